using Distill.Mesh.Extractor.Grpc;
using Distill.Mesh.ServiceDefaults;

namespace Distill.Mesh.Extractor.Extensions;

/// <summary>The extractor's library surface, so one host can compose every service.</summary>
public static class ExtractorServiceExtensions
{
    public static IHostApplicationBuilder AddExtractorService(this IHostApplicationBuilder builder)
    {
        builder.AddServiceDefaults("distill-extractor");
        builder.Services.Configure<ExtractorOptions>(builder.Configuration.GetSection("Extractor"));
        return builder;
    }

    public static WebApplication MapExtractorService(this WebApplication app)
    {
        app.Services.GetRequiredService<MutatingMethods>().Add(ExtractorGrpcService.ExtractMethod, ExtractorGrpcService.ConsolidateMethod);
        app.MapGrpcService<ExtractorGrpcService>();
        return app;
    }
}
