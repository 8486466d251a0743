using Distill.Mesh.Extractor.Grpc;
using Distill.Mesh.ServiceDefaults;

namespace Distill.Mesh.Extractor.Extensions;

/// <summary>The extractor's library surface, so one host can compose every service.</summary>
public static class ExtractorServiceExtensions
{
    /// <summary>The extractor service; with Extractor:JobSpec, the job that runs one shard (or the consolidation) of a run and exits.</summary>
    public static IHostApplicationBuilder AddExtractorService(this IHostApplicationBuilder builder)
    {
        builder.AddServiceDefaults("distill-extractor");
        builder.Services.Configure<ExtractorOptions>(builder.Configuration.GetSection("Extractor"));
        // A Job's pod environment (DISTILL_RUN_ID, JOB_COMPLETION_INDEX) fills what the section leaves unset.
        builder.Services.PostConfigure<ExtractorOptions>(o =>
        {
            var (runId, index) = JobOutcome.FromEnvironment(builder.Configuration);
            o.JobRunId ??= runId;
            o.JobShard ??= index;
        });
        if (!string.IsNullOrWhiteSpace(builder.Configuration["Extractor:JobSpec"]))
            builder.Services.AddHostedService<Jobs.ExtractorJob>();
        return builder;
    }

    public static WebApplication MapExtractorService(this WebApplication app)
    {
        app.Services.GetRequiredService<MutatingMethods>().Add(ExtractorGrpcService.ExtractMethod, ExtractorGrpcService.ConsolidateMethod);
        app.MapGrpcService<ExtractorGrpcService>();
        return app;
    }
}
