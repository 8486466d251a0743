using Distill.Mesh.Registry.Grpc;
using Distill.Mesh.Registry.Storage;
using Distill.Mesh.ServiceDefaults;

namespace Distill.Mesh.Registry.Extensions;

/// <summary>The registry's library surface, so one host can compose every service.</summary>
public static class RegistryServiceExtensions
{
    public static IHostApplicationBuilder AddRegistryService(this IHostApplicationBuilder builder)
    {
        builder.AddServiceDefaults("distill-registry");
        builder.Services.Configure<RegistryOptions>(builder.Configuration.GetSection("Registry"));
        builder.Services.AddSingleton(sp => new ArtifactStore(sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<RegistryOptions>>().Value));
        builder.Services.AddSingleton<RegistryReadiness>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<RegistryReadiness>());
        builder.Services.AddHealthChecks().AddCheck<RegistryReadiness>("registry-database", tags: [MeshHealth.Ready]);
        return builder;
    }

    public static WebApplication MapRegistryService(this WebApplication app)
    {
        app.Services.GetRequiredService<MutatingMethods>().Add(RegistryGrpcService.PushMethod, RegistryGrpcService.TagMethod, RegistryGrpcService.DeleteMethod);
        app.MapGrpcService<RegistryGrpcService>();
        return app;
    }
}
