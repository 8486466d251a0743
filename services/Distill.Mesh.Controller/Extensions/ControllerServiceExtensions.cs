using Distill.Mesh.Controller.Grpc;
using Distill.Mesh.Controller.Runs;
using Distill.Mesh.ServiceDefaults;

namespace Distill.Mesh.Controller.Extensions;

/// <summary>The controller's library surface, so one host can compose every service.</summary>
public static class ControllerServiceExtensions
{
    /// <summary>The runs API over the backend Controller:Backend names (local: the services on this machine).</summary>
    public static IHostApplicationBuilder AddControllerService(this IHostApplicationBuilder builder, IServiceChannels? channels = null)
    {
        builder.AddServiceDefaults("distill-controller");
        builder.Services.Configure<ControllerOptions>(builder.Configuration.GetSection("Controller"));
        if (channels is not null)
            builder.Services.AddSingleton(channels);
        else
            builder.Services.AddSingleton<IServiceChannels, GrpcServiceChannels>();
        var backend = builder.Configuration.GetSection("Controller").Get<ControllerOptions>()?.Backend ?? "local";
        if (!backend.Equals("local", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"Controller:Backend '{backend}' is not available (local)");
        builder.Services.AddSingleton<LocalRunBackend>();
        builder.Services.AddSingleton<IRunBackend>(sp => sp.GetRequiredService<LocalRunBackend>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<LocalRunBackend>());
        return builder;
    }

    public static WebApplication MapControllerService(this WebApplication app)
    {
        app.Services.GetRequiredService<MutatingMethods>().Add(RunsGrpcService.SubmitMethod, RunsGrpcService.CancelMethod);
        app.MapGrpcService<RunsGrpcService>();
        return app;
    }
}
