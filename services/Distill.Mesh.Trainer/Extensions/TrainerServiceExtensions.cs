using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Trainer.Grpc;
using Distill.Mesh.Trainer.Runs;

namespace Distill.Mesh.Trainer.Extensions;

/// <summary>The trainer service's library surface, so one host can compose every service.</summary>
public static class TrainerServiceExtensions
{
    /// <summary>
    /// Registers the run manager (a hosted service: it resumes runs at start, checkpoints them at
    /// stop) and, when Trainer:JobSpec is set, the job that runs that one spec and exits.
    /// </summary>
    public static IHostApplicationBuilder AddTrainerService(this IHostApplicationBuilder builder, ITeacherConnector? connector = null)
    {
        builder.AddServiceDefaults("distill-trainer");
        builder.Services.Configure<TrainerOptions>(builder.Configuration.GetSection("Trainer"));
        // A Job's pod environment (DISTILL_RUN_ID, JOB_COMPLETION_INDEX) fills what the section leaves unset.
        builder.Services.PostConfigure<TrainerOptions>(o => o.JobRunId ??= JobOutcome.FromEnvironment(builder.Configuration).RunId);
        // SIGTERM: running runs checkpoint within Trainer:ShutdownGrace; the host waits that long
        // (Kubernetes' terminationGracePeriodSeconds must cover it).
        var settings = builder.Configuration.GetSection("Trainer").Get<TrainerOptions>() ?? new TrainerOptions();
        var grace = settings.ShutdownGrace;
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = o.ShutdownTimeout > grace ? o.ShutdownTimeout : grace + TimeSpan.FromSeconds(5));
        if (connector is not null)
            builder.Services.AddSingleton(connector);
        else
            builder.Services.AddSingleton<ITeacherConnector, GrpcTeacherConnector>();
        builder.Services.AddSingleton<StageRunner>();
        builder.Services.AddSingleton<ProgressReporter>();
        builder.Services.AddSingleton<RunManager>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<RunManager>());
        if (!string.IsNullOrWhiteSpace(settings.JobSpec))
            builder.Services.AddHostedService<TrainerJob>();
        return builder;
    }

    public static WebApplication MapTrainerService(this WebApplication app)
    {
        app.Services.GetRequiredService<MutatingMethods>().Add(TrainerGrpcService.StartMethod, TrainerGrpcService.CancelMethod);
        app.MapGrpcService<TrainerGrpcService>();
        return app;
    }
}
