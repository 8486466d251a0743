using Distill.Mesh.Controller.Grpc;
using Distill.Mesh.Controller.Runs;
using Distill.Mesh.ServiceDefaults;

namespace Distill.Mesh.Controller.Extensions;

/// <summary>The controller's library surface, so one host can compose every service.</summary>
public static class ControllerServiceExtensions
{
    public static IHostApplicationBuilder AddControllerService(this IHostApplicationBuilder builder, IServiceChannels? channels = null)
    {
        builder.AddServiceDefaults("distill-controller");
        if (channels is not null)
            builder.Services.AddSingleton(channels);
        else
            builder.Services.AddSingleton<IServiceChannels, GrpcServiceChannels>();
        builder.Services.AddSingleton<LocalRunBackend>();
        return builder;
    }

    public static WebApplication MapControllerService(this WebApplication app)
    {
        app.Services.GetRequiredService<MutatingMethods>().Add(RunsGrpcService.SubmitMethod, RunsGrpcService.CancelMethod);
        app.MapGrpcService<RunsGrpcService>();
        return app;
    }
}
