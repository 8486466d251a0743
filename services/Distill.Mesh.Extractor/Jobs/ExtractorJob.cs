using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Clients.Extractor;
using Distill.Mesh.Modeling.Extraction;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Specs.Runs;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Extractor.Jobs;

/// <summary>
/// Job mode (Extractor:JobSpec set): one shard of a run's extraction (shard JOB_COMPLETION_INDEX of
/// extract.shards, as a Kubernetes Indexed Job runs them), or the consolidation of the finished
/// shards; then the process exits: 0 done, 1 failed, 143 stopped by SIGTERM. Restart-safe: a
/// finished shard (its report matches the plan and its file's SHA-256) is skipped, an interrupted
/// one is computed again; consolidation refuses missing shards.
/// </summary>
public sealed class ExtractorJob(IOptions<ExtractorOptions> options, JobOutcome outcome, ILogger<ExtractorJob> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        try
        {
            var id = RunIds.Check(settings.JobId());
            var parsed = RunSpecLoader.Parse(await File.ReadAllTextAsync(settings.JobSpec!, stoppingToken), [], folder: null, settings.JobSpec!);
            ConfigBinder.Fail(settings.JobSpec!, RunSpecValidator.Problems(parsed, new RunValidation(CheckPaths: true, ThroughMesh: true)));
            var spec = parsed.Spec;
            if (!spec.Has(Stage.Extract))
                throw new ConfigException($"{settings.JobSpec}: the run has no extract stage");
            spec.Train.OutputDir = Path.Combine(Path.GetFullPath(settings.RunsDirectory), id);
            var trained = Path.Combine(spec.Train.OutputDir, "model");
            var (teacher, student, output) = ExtractionSpecs.Folders(spec, spec.Has(Stage.Train) && File.Exists(Path.Combine(trained, "config.json")) ? trained : null);
            await Task.Run(() =>
            {
                using var extractor = LoraExtractor.Open(teacher, student, ExtractionSpecs.ToOptions(spec.Extract, spec.Train.Seed));
                void Log(ExtractionEvent e)
                {
                    if (e.Kind != "tensor")
                        logger.LogInformation("Run {RunId} extract: {Message}", id, e.Message);
                }

                if (settings.JobConsolidate)
                {
                    var summary = extractor.Consolidate(output, cleanup: false, Log);
                    logger.LogInformation("Run {RunId}: adapter of {Modules} modules in {Output}", id, summary.Tensors.Count(t => t.Skipped is null), output);
                }
                else
                {
                    var shard = settings.JobShard ?? throw new ConfigException("Extractor:JobShard (or JOB_COMPLETION_INDEX) names the shard this job computes; or set Extractor:JobConsolidate");
                    if (shard < 0 || shard >= extractor.Plan.Shards)
                        throw new ConfigException($"shard {shard} is outside the plan's {extractor.Plan.Shards} shards (extract.shards)");
                    extractor.RunShard(output, shard, Log, stoppingToken);
                }
            }, stoppingToken);
            await outcome.ExitAsync(0, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            outcome.Set(143);
            return;
        }
        catch (Exception e) when (e is ConfigException or ArgumentException or IOException or InvalidOperationException
            or Modeling.Checkpoints.CheckpointFormatException or Modeling.Models.ModelConfigException)
        {
            logger.LogCritical("Extraction job {Spec} failed: {Reason}", settings.JobSpec, e.Message);
            await outcome.ExitAsync(1, stoppingToken);
        }
    }
}
