using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Teacher.Caching;
using Distill.Mesh.Teacher.Grpc;
using Distill.Mesh.Teacher.Scoring;
using Distill.Mesh.Training.Teachers;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Distill.Mesh.Teacher.Extensions;

/// <summary>The teacher service's library surface, so one host can compose every service.</summary>
public static class TeacherServiceExtensions
{
    /// <summary>Registers the teacher (loaded from Teacher:Model on Teacher:Device, or the one given), its queue, cache and readiness.</summary>
    public static IHostApplicationBuilder AddTeacherService(this IHostApplicationBuilder builder, InProcessTeacher? teacher = null)
    {
        builder.AddServiceDefaults("distill-teacher");
        builder.Services.Configure<TeacherOptions>(builder.Configuration.GetSection("Teacher"));
        // A Job's pod environment (DISTILL_RUN_ID, JOB_COMPLETION_INDEX) fills what the section leaves unset.
        builder.Services.PostConfigure<TeacherOptions>(o => o.JobShard ??= JobOutcome.FromEnvironment(builder.Configuration).Index);
        // A teacher handed in stays the caller's; one loaded here (in the background, so liveness
        // answers while it loads) belongs to the host. Either is ready after its warm-up.
        builder.Services.AddSingleton(new TeacherModel(teacher));
        builder.Services.TryAddSingleton<ITeacherWarmUp, ForwardWarmUp>();
        builder.Services.AddHostedService<TeacherLoader>();
        builder.Services.AddHealthChecks().AddCheck<TeacherReadiness>("teacher-model", tags: [MeshHealth.Ready]);
        builder.Services.AddSingleton<ScoringQueue>();
        builder.Services.AddSingleton<CachedScorer>();
        if (!string.IsNullOrWhiteSpace(builder.Configuration["Teacher:JobSpec"]))
            builder.Services.AddHostedService<Jobs.PrecomputeJob>();
        builder.Services.AddSingleton<ISignalCache>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<TeacherOptions>>().Value;
            if (string.IsNullOrWhiteSpace(options.Redis))
                return new InMemorySignalCache(options.CacheBytes);
            var configuration = ConfigurationOptions.Parse(options.Redis);
            configuration.AbortOnConnectFail = false; // Redis may come later or go away: the cache is optional
            return new RedisSignalCache(ConnectionMultiplexer.Connect(configuration), options.CacheTtl, sp.GetRequiredService<ILogger<RedisSignalCache>>(), options.RedisBreak);
        });
        return builder;
    }

    public static WebApplication MapTeacherService(this WebApplication app)
    {
        app.MapGrpcService<TeacherGrpcService>();
        return app;
    }
}
