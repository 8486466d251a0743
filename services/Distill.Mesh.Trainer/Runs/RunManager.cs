using Distill.Mesh.Specs.Storage;
using System.Collections.Concurrent;
using System.Text.Json;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Specs.Runs;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Trainer.Runs;

/// <summary>A run id that exists with another spec.</summary>
public sealed class RunConflictException(string message) : Exception(message);

/// <summary>
/// Owns the trainer's runs: each in its own folder on the runs volume (spec.json, state.json, the
/// recipe's outputs and checkpoints). A spec is parsed and validated completely before anything is
/// written, so a folder only ever holds a spec that runs. A run executes its stages on a worker
/// task; its updates fan out to watchers. At startup, runs found Running or Interrupted resume (a
/// damaged folder is moved aside with a warning, never fatal); at shutdown, running runs
/// checkpoint and become Interrupted.
/// </summary>
public sealed class RunManager(IOptions<TrainerOptions> options, StageRunner stages, ILogger<RunManager> logger) : IHostedService
{
    private readonly ConcurrentDictionary<string, TrainerRun> _runs = new(StringComparer.Ordinal);
    private readonly Lock _starting = new();

    private string Root => Path.GetFullPath(options.Value.RunsDirectory);

    public IReadOnlyCollection<TrainerRun> Runs => _runs.Values.ToList();

    public TrainerRun Get(string runId) =>
        _runs.TryGetValue(runId, out var run) ? run : throw new KeyNotFoundException($"no run '{runId}' on this trainer");

    /// <summary>
    /// Starts a run; the same id with the same spec returns the existing run (retried Starts are
    /// harmless), another spec under a known id is a <see cref="RunConflictException"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The spec does not parse or validate; nothing was written.</exception>
    public TrainerRun Start(string? runId, string specText, IReadOnlyList<string> overrides, IReadOnlyList<string> only)
    {
        var id = RunIds.Check(string.IsNullOrEmpty(runId) ? RunIds.New() : runId);
        if (string.IsNullOrWhiteSpace(specText))
            throw new ArgumentException("config_yaml is empty");
        var folder = Path.Combine(Root, id);
        var parsed = Parse(id, specText, overrides, folder, only, checkPaths: true);
        lock (_starting)
        {
            if (_runs.TryGetValue(id, out var existing))
            {
                if (existing.Record.Sha256 != parsed.Sha256)
                    throw new RunConflictException($"run '{id}' exists with another spec (sha256 {existing.Record.Sha256[..12]}…, this one {parsed.Sha256[..12]}…); choose another run id");
                if (existing.Record.Stages.SequenceEqual(only))
                    return existing;
                // Another slice of the same run (the next stage's pod on Kubernetes): it runs once the run is idle.
                if (existing.Status == RunStatus.Running)
                    throw new RunConflictException($"run '{id}' is running stages {string.Join(", ", existing.Record.Stages.DefaultIfEmpty("(all)"))}; start {string.Join(", ", only.DefaultIfEmpty("(all)"))} after it");
                existing.Refilter(only);
                AtomicFile.WriteAllText(Path.Combine(folder, "spec.json"), JsonSerializer.Serialize(existing.Record));
                Launch(existing);
                return existing;
            }

            var record = new RunSpecRecord(id, specText, overrides, only, parsed.Sha256, DateTime.UtcNow);
            Directory.CreateDirectory(folder);
            AtomicFile.WriteAllText(Path.Combine(folder, "spec.json"), JsonSerializer.Serialize(record));
            var run = new TrainerRun(record, parsed, folder);
            _runs[id] = run;
            Launch(run);
            return run;
        }
    }

    /// <summary>Parses and validates a spec for run <paramref name="id"/> (its outputs in <paramref name="folder"/>).</summary>
    private static ParsedRunSpec Parse(string id, string specText, IReadOnlyList<string> overrides, string folder, IReadOnlyList<string> only, bool checkPaths)
    {
        try
        {
            var parsed = RunSpecLoader.Parse(specText, overrides, folder: null, "config_yaml");
            var problems = RunSpecValidator.Problems(parsed, new RunValidation(CheckPaths: checkPaths, ThroughMesh: true));
            problems.AddRange(only.Where(s => !parsed.Spec.Has(s)).Select(s => $"stages: this trainer was asked to run '{s}', which the spec does not have ({string.Join(", ", parsed.Spec.Stages)})"));
            ConfigBinder.Fail($"run '{id}'", problems);
            var spec = parsed.Spec;
            spec.Train.OutputDir = folder;
            // One teacher without its own endpoint is reached at mesh.teacher (validation refused it for a mixture).
            foreach (var teacher in spec.Train.Teachers.Where(t => string.IsNullOrWhiteSpace(t.Endpoint)))
                teacher.Endpoint = spec.Mesh.Teacher;
            return RunSpecLoader.Canonicalize(spec) with { GivenKeys = parsed.GivenKeys };
        }
        catch (ConfigException e)
        {
            throw new ArgumentException(e.Message, e);
        }
    }

    /// <summary>Stops a run at its next step boundary (with a checkpoint); a finished run is left as it is.</summary>
    public TrainerRun Cancel(string runId)
    {
        var run = Get(runId);
        if (run.Status is RunStatus.Running)
        {
            run.CancelledByUser = true;
            run.Cancellation.Cancel();
        }

        return run;
    }

    private void Launch(TrainerRun run)
    {
        run.Restart();
        run.Cancellation = new CancellationTokenSource();
        SaveState(run, RunStatus.Running);
        run.Execution = Task.Run(() => ExecuteAsync(run));
    }

    private async Task ExecuteAsync(TrainerRun run)
    {
        using var activity = MeshTelemetry.Source.StartActivity("trainer.run").ForRun(run.RunId);
        var cancellation = run.Cancellation.Token;
        try
        {
            var note = await stages.RunAsync(run, () => SaveState(run, RunStatus.Running), cancellation);
            SaveState(run, RunStatus.Succeeded);
            run.Finish(RunStatus.Succeeded, null, note ?? "succeeded");
        }
        catch (Exception) when (run.Cancellation.IsCancellationRequested)
        {
            // Stopped mid-stage (an in-flight teacher call was cancelled, as gRPC's Cancelled or an
            // OperationCanceledException): not a failure. The run resumes from its last checkpoint.
            var status = run.CancelledByUser ? RunStatus.Cancelled : RunStatus.Interrupted;
            MarkRunning(run, status == RunStatus.Cancelled ? StageState.Cancelled : StageState.Interrupted, status == RunStatus.Cancelled ? "cancelled" : "interrupted; resumes when the trainer restarts");
            SaveState(run, status);
            run.Finish(status, null);
        }
        catch (Exception e)
        {
            var failed = run.Stages.FirstOrDefault(s => s.State == StageState.Running)?.Name;
            var message = Describe(e);
            logger.LogError(e, "Run {RunId} failed in stage {Stage}", run.RunId, failed);
            MarkRunning(run, StageState.Failed, message);
            var error = failed is null ? message : $"stage {failed}: {message}";
            SaveState(run, RunStatus.Failed, error);
            run.Finish(RunStatus.Failed, error);
        }
    }

    /// <summary>A failure in words: what the user's config or data got wrong, or what a service said.</summary>
    private static string Describe(Exception e) => e switch
    {
        global::Grpc.Core.RpcException rpc => $"{rpc.StatusCode}: {rpc.Status.Detail}",
        _ => e.Message,
    };

    private static void MarkRunning(TrainerRun run, StageState state, string message)
    {
        foreach (var stage in run.Stages.Where(s => s.State == StageState.Running))
            run.Update(stage with { State = state, Message = message, Ended = DateTime.UtcNow });
    }

    private static void SaveState(TrainerRun run, RunStatus status, string? error = null) =>
        AtomicFile.WriteAllText(Path.Combine(run.Folder, "state.json"), JsonSerializer.Serialize(new RunRecord(run.RunId, status, run.Recipe, error, run.Stages)));

    /// <summary>Picks up the runs on the volume; resumes those that were running or interrupted.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(Root))
            return Task.CompletedTask;
        foreach (var folder in Directory.GetDirectories(Root).Where(d => !Path.GetFileName(d).StartsWith('.')))
        {
            var specPath = Path.Combine(folder, "spec.json");
            if (!File.Exists(specPath))
                continue;
            if (options.Value.JobSpec is not null && Path.GetFileName(folder) != options.Value.JobId())
                continue;
            TrainerRun run;
            RunRecord? state;
            try
            {
                var record = JsonSerializer.Deserialize<RunSpecRecord>(File.ReadAllText(specPath)) ?? throw new JsonException("spec.json is empty");
                if (record.RunId != Path.GetFileName(folder))
                    throw new JsonException($"spec.json names run '{record.RunId}'");
                // Folders it names are checked again when its stages run: one missing now fails the run, it does not hide it.
                run = new TrainerRun(record, Parse(record.RunId, record.Spec, record.Overrides ?? [], folder, record.Stages ?? [], checkPaths: false), folder);
                var statePath = Path.Combine(folder, "state.json");
                state = File.Exists(statePath) ? JsonSerializer.Deserialize<RunRecord>(File.ReadAllText(statePath)) : null;
            }
            catch (Exception e) when (e is JsonException or ArgumentException or IOException or NotSupportedException)
            {
                Quarantine(folder, e.Message);
                continue;
            }

            run.Restore(state?.Stages);
            if (!_runs.TryAdd(run.RunId, run))
                continue;
            if (state is null || state.Status is RunStatus.Running or RunStatus.Interrupted)
            {
                logger.LogInformation("Resuming run {RunId}", run.RunId);
                Launch(run);
            }
            else
            {
                run.Finish(state.Status, state.Error);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>A run folder that cannot be read is moved under .quarantine/ with a warning; the trainer starts without it.</summary>
    private void Quarantine(string folder, string why)
    {
        var target = Path.Combine(Root, ".quarantine", $"{Path.GetFileName(folder)}-{DateTime.UtcNow:yyyyMMddHHmmss}");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        Directory.Move(folder, target);
        logger.LogWarning("Run folder {Folder} could not be read ({Reason}); moved to {Target}", folder, why, target);
    }

    /// <summary>Running runs checkpoint and stop; they resume when the trainer starts again.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        var running = _runs.Values.Where(r => r.Status == RunStatus.Running).ToList();
        foreach (var run in running)
            run.Cancellation.Cancel();
        try
        {
            await Task.WhenAll(running.Select(r => r.Execution)).WaitAsync(options.Value.ShutdownGrace, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            logger.LogWarning("Runs {Runs} did not checkpoint within {Grace}", string.Join(", ", running.Where(r => !r.Execution.IsCompleted).Select(r => r.RunId)), options.Value.ShutdownGrace);
        }
    }
}
