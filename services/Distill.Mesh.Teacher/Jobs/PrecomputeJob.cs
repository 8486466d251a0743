using Distill.Mesh.ServiceDefaults;
using System.Diagnostics;
using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Specs.Runs;
using Distill.Mesh.Teacher.Scoring;
using Distill.Mesh.Training.Recipes;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Teacher.Jobs;

/// <summary>
/// Precompute job mode (Teacher:JobSpec set): this teacher scores its shard of every micro-batch
/// the run's train stage will send (the same sequences, signal request and seeds) into its cache
/// through the same cache-first path Score uses, so the run is answered from the cache; then the
/// process exits: 0 done, 1 failed, 143 stopped by SIGTERM. Restart-safe: what is in the cache
/// already is a hit and not scored again, so a rerun of a finished shard only reads the cache.
/// Progress goes to the log every 50 micro-batches and, after each, to the host's <see cref="PrecomputeProgress"/> watchers (none in a pod).
/// </summary>
public sealed class PrecomputeJob(TeacherModel model, CachedScorer scorer, IOptions<TeacherOptions> options, JobOutcome outcome, ILogger<PrecomputeJob> logger, Training.Teachers.ISignalCache cache,
    IEnumerable<IProgress<PrecomputeProgress>> watchers) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        try
        {
            // The model first: a host waiting for readiness sees the job's own error, not a load in progress.
            var teacher = await model.Ready.WaitAsync(stoppingToken);
            if (string.IsNullOrWhiteSpace(settings.Redis))
                throw new ConfigException("a precompute job fills Redis (Teacher:Redis): the in-process cache would end with the job");
            var parsed = RunSpecLoader.Parse(await File.ReadAllTextAsync(settings.JobSpec!, stoppingToken), [], settings.JobSpecFolder, settings.JobSpec!);
            ConfigBinder.Fail(settings.JobSpec!, RunSpecValidator.Problems(parsed, new RunValidation(CheckPaths: true, ThroughMesh: false, PrecomputeThroughServices: false)));
            var shards = parsed.Spec.Precompute.Shards;
            var shard = settings.JobShard ?? (shards == 1 ? 0 : throw new ConfigException($"the run has {shards} precompute shards: Teacher:JobShard (or JOB_COMPLETION_INDEX) names this job's"));
            var description = teacher.Describe();
            long scored = 0, cached = 0;
            var watch = Stopwatch.StartNew();
            var recorded = false;
            var result = await SignalPrecompute.RunAsync(parsed.Spec.Train, description, async (batch, request, token) =>
            {
                var (signal, precision) = CachedScorer.Signal(description, SignalMapping.ToSpec(request));
                // Runs asking for another signal setting are told their lookups cannot hit these entries.
                if (!recorded)
                {
                    await cache.RecordPrecomputedAsync(description.Fingerprint, Training.Teachers.SignalCacheKey.Describe(signal, precision), token);
                    recorded = true;
                }

                var sequences = RemoteTeacher.Sequences(batch).Select(ids => scorer.ScoreAsync(ids, signal, precision, token)).ToList();
                foreach (var (_, fromCache, _) in await Task.WhenAll(sequences))
                    _ = fromCache ? ++cached : ++scored;
            }, shard, shards, new Progress<(long Done, long Total)>(p =>
            {
                foreach (var watcher in watchers)
                    watcher.Report(new PrecomputeProgress(shard, shards, p.Done, p.Total));
                if (p.Done == p.Total || p.Done % 50 == 0)
                {
                    // Rate over the whole shard so far (the first batches warm the model up; 50 batches dilute it).
                    var perSecond = p.Done / Math.Max(watch.Elapsed.TotalSeconds, 1e-3);
                    logger.LogInformation("Precompute shard {Shard}/{Shards}: {Done}/{Total} micro-batches ({Rate:F2}/s, ETA {Eta})", shard, shards, p.Done, p.Total,
                        perSecond, TimeSpan.FromSeconds(Math.Round((p.Total - p.Done) / Math.Max(perSecond, 1e-9))).ToString("c", System.Globalization.CultureInfo.InvariantCulture));
                }
            }), stoppingToken);
            logger.LogInformation("Precompute shard {Shard}/{Shards} done in {Seconds:F1} s: {Batches} micro-batches, {Scored} sequences scored, {Cached} already cached",
                shard, shards, watch.Elapsed.TotalSeconds, result.MicroBatches, scored, cached);
            await outcome.ExitAsync(0, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            outcome.Set(143);
            return;
        }
        catch (Exception e) when (e is ConfigException or ArgumentException or IOException or InvalidOperationException or global::Grpc.Core.RpcException
            or Training.Teachers.IncompatibleTeacherException or Training.Datasets.DatasetFormatException)
        {
            logger.LogCritical("Precompute job {Spec} failed: {Reason}", settings.JobSpec, e.Message);
            await outcome.ExitAsync(1, stoppingToken);
        }
    }
}
