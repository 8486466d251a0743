using Distill.Mesh.Controller.Grpc;
using Distill.Mesh.Controller.Kubernetes;
using Distill.Mesh.Controller.Kubernetes.Progress;
using Distill.Mesh.Controller.Kubernetes.Reconciliation;
using Distill.Mesh.Controller.Kubernetes.Scaling;
using Distill.Mesh.Controller.Runs;
using Microsoft.Extensions.DependencyInjection.Extensions;
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
        // Runs by phase and pending GPU pods on either backend (always none pending on one machine).
        builder.Services.AddSingleton<OperatorMetrics>();
        switch (backend.ToLowerInvariant())
        {
            case "local":
                builder.Services.AddSingleton<LocalRunBackend>();
                builder.Services.AddSingleton<IRunBackend>(sp => sp.GetRequiredService<LocalRunBackend>());
                builder.Services.AddHostedService(sp => sp.GetRequiredService<LocalRunBackend>());
                break;
            case "kubernetes":
                AddKubernetesBackend(builder);
                break;
            default:
                throw new InvalidOperationException($"Controller:Backend '{backend}' is not one of local, kubernetes");
        }

        return builder;
    }

    /// <summary>Runs as DistillationRuns, reconciled by the operator in the replica that holds the lease.</summary>
    private static void AddKubernetesBackend(IHostApplicationBuilder builder)
    {
        builder.Services.Configure<KubernetesOptions>(builder.Configuration.GetSection("Controller:Kubernetes"));
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<KubernetesConnection>();
        builder.Services.AddSingleton(sp => sp.GetRequiredService<KubernetesConnection>().Client);
        builder.Services.AddSingleton<RunReconciler>();
        builder.Services.AddSingleton<TeacherScaler>();
        builder.Services.AddSingleton<OperatorLoop>();
        builder.Services.AddSingleton<KubernetesOperator>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<KubernetesOperator>());
        builder.Services.AddSingleton<ProgressRelay>();
        builder.Services.AddSingleton<KubernetesRunBackend>();
        builder.Services.AddSingleton<IRunBackend>(sp => sp.GetRequiredService<KubernetesRunBackend>());
    }

    public static WebApplication MapControllerService(this WebApplication app)
    {
        app.Services.GetRequiredService<MutatingMethods>().Add(RunsGrpcService.SubmitMethod, RunsGrpcService.CancelMethod, ProgressSinkService.ReportMethod);
        app.MapGrpcService<RunsGrpcService>();
        if (app.Services.GetService<ProgressRelay>() is not null)
            app.MapGrpcService<ProgressSinkService>();
        return app;
    }
}
