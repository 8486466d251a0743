using Distill.Mesh.Clients.Registry;
using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Recipes;
using Distill.Mesh.Training.Teachers;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Trainer.Runs;

/// <summary>
/// Owns the trainer's runs: each in its own folder on the runs volume (spec.json, state.json,
/// config, checkpoints, outputs). A run executes on a worker task; its events are kept and fanned
/// out to watchers. At startup, runs found Running or Interrupted resume from their checkpoints;
/// at shutdown, running runs checkpoint and become Interrupted.
/// </summary>
public sealed partial class RunManager(
    IOptions<TrainerOptions> options, ITeacherConnector connector, MeshChannels channels, IOptions<MeshOptions> mesh, ILogger<RunManager> logger) : IHostedService
{
    private readonly ConcurrentDictionary<string, Run> _runs = new(StringComparer.Ordinal);

    private string Root => Path.GetFullPath(options.Value.RunsDirectory);

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}$")]
    private static partial Regex RunIdPattern();

    /// <summary>One run in memory.</summary>
    public sealed class Run(RunSpec spec, string folder)
    {
        private readonly object _lock = new();
        private readonly List<TrainEvent> _history = [];
        private readonly List<Channel<(TrainEvent Event, RunStatus Status)>> _watchers = [];

        public RunSpec Spec { get; } = spec;

        public string Folder { get; } = folder;

        public RunStatus Status { get; private set; } = RunStatus.Running;

        public string Recipe { get; set; } = "";

        public string? Error { get; private set; }

        public CancellationTokenSource Cancellation { get; set; } = new();

        public bool CancelledByUser { get; set; }

        public Task Execution { get; set; } = Task.CompletedTask;

        public TrainEvent? Last
        {
            get
            {
                lock (_lock)
                    return _history.Count > 0 ? _history[^1] : null;
            }
        }

        public void Publish(TrainEvent e)
        {
            lock (_lock)
            {
                if (e.Step > 0 && (_history.Count == 0 || e.Step > _history[^1].Step || e.Eval is not null || e.Message is not null))
                    _history.Add(e);
                foreach (var watcher in _watchers)
                    watcher.Writer.TryWrite((e, Status));
            }
        }

        public void Finish(RunStatus status, string? error, string? note = null)
        {
            lock (_lock)
            {
                Status = status;
                Error = error;
                var last = _history.Count > 0 ? _history[^1] : new TrainEvent(0, 0, 0, 0, 0, 0, 0, 0, 0);
                foreach (var watcher in _watchers)
                {
                    watcher.Writer.TryWrite((last with { Message = error ?? note ?? status.ToString().ToLowerInvariant() }, status));
                    watcher.Writer.TryComplete();
                }

                _watchers.Clear();
            }
        }

        public void Restart()
        {
            lock (_lock)
                Status = RunStatus.Running;
        }

        /// <summary>The history so far, then live events until the run ends.</summary>
        public async IAsyncEnumerable<(TrainEvent Event, RunStatus Status)> WatchAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            var channel = Channel.CreateUnbounded<(TrainEvent, RunStatus)>();
            List<TrainEvent> replay;
            RunStatus status;
            lock (_lock)
            {
                replay = [.. _history];
                status = Status;
                if (status == RunStatus.Running)
                    _watchers.Add(channel);
            }

            foreach (var e in replay)
                yield return (e, RunStatus.Running);
            if (status != RunStatus.Running)
            {
                yield return ((replay.Count > 0 ? replay[^1] : new TrainEvent(0, 0, 0, 0, 0, 0, 0, 0, 0)) with { Message = Error ?? status.ToString().ToLowerInvariant() }, status);
                yield break;
            }

            await foreach (var item in channel.Reader.ReadAllAsync(cancellationToken))
                yield return item;
        }
    }

    public IReadOnlyCollection<Run> Runs => _runs.Values.ToList();

    public Run Get(string runId) =>
        _runs.TryGetValue(runId, out var run) ? run : throw new KeyNotFoundException($"no run '{runId}'");

    /// <summary>Starts a run; a known run id returns the existing run (so retried Starts are harmless).</summary>
    public Run Start(RunSpec spec)
    {
        var id = string.IsNullOrEmpty(spec.RunId) ? $"run-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..6]}" : spec.RunId;
        if (!RunIdPattern().IsMatch(id))
            throw new ArgumentException($"run_id '{spec.RunId}' must be lowercase letters, digits and '-', at most 63 characters");
        if (string.IsNullOrWhiteSpace(spec.ConfigYaml))
            throw new ArgumentException("config_yaml is empty");
        spec = spec with { RunId = id };
        var folder = Path.Combine(Root, id);
        var created = false;
        var run = _runs.GetOrAdd(id, _ =>
        {
            created = true;
            return new Run(spec, folder);
        });
        if (!created)
            return run;
        Directory.CreateDirectory(folder);
        AtomicFile.WriteAllText(Path.Combine(folder, "spec.json"), JsonSerializer.Serialize(spec));
        Launch(run);
        return run;
    }

    /// <summary>Stops a run at its next step boundary (with a checkpoint).</summary>
    public Run Cancel(string runId)
    {
        var run = Get(runId);
        run.CancelledByUser = true;
        run.Cancellation.Cancel();
        return run;
    }

    private void Launch(Run run)
    {
        run.Restart();
        run.Cancellation = new CancellationTokenSource();
        SaveState(run, RunStatus.Running);
        run.Execution = Task.Run(() => ExecuteAsync(run));
    }

    private async Task ExecuteAsync(Run run)
    {
        using var activity = MeshTelemetry.Source.StartActivity("trainer.run");
        activity?.SetTag("distill.run_id", run.Spec.RunId);
        var cancellation = run.Cancellation.Token;
        try
        {
            var configPath = Path.Combine(run.Folder, "config.yaml");
            AtomicFile.WriteAllText(configPath, run.Spec.ConfigYaml);
            var (config, resolved) = TrainConfigLoader.Load(configPath, [.. run.Spec.Overrides, $"output_dir={run.Folder}"]);
            run.Recipe = config.Recipe;
            Func<TeacherConfig, ITeacherSignal>? connect = null;
            ITeacherSignal? remote = null;
            if (!string.IsNullOrEmpty(run.Spec.TeacherEndpoint))
            {
                remote = await connector.ConnectAsync(run.Spec.TeacherEndpoint, cancellation);
                connect = _ => remote;
            }

            var result = await RecipeRunner.RunAsync(config, RerunPolicy.Resume, new Progress(run), cancellation, connect);
            var status = result.Completed ? RunStatus.Succeeded : run.CancelledByUser ? RunStatus.Cancelled : RunStatus.Interrupted;
            SaveState(run, status);
            var note = remote is Clients.Teacher.RemoteTeacher client
                ? $"{status.ToString().ToLowerInvariant()}; teacher cache hits {client.CacheHitRatio:P1} of {client.ScoredSequences} sequences"
                : null;
            if (status == RunStatus.Succeeded && config.Publish is { Name.Length: > 0 } publish)
                note = JoinNotes(note, await PublishAsync(run, config, resolved, result, publish));
            run.Finish(status, null, note);
        }
        catch (Exception) when (run.Cancellation.IsCancellationRequested)
        {
            // Stopped mid-step (an in-flight teacher call was cancelled, as gRPC's Cancelled or an
            // OperationCanceledException): not a failure. The run resumes from its last checkpoint.
            var status = run.CancelledByUser ? RunStatus.Cancelled : RunStatus.Interrupted;
            SaveState(run, status);
            run.Finish(status, null);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Run {RunId} failed", run.Spec.RunId);
            SaveState(run, RunStatus.Failed, e.Message);
            run.Finish(RunStatus.Failed, e.Message);
        }
    }

    /// <summary>Pushes the result; a failed push is reported in the run's note, the run itself stays succeeded.</summary>
    private async Task<string> PublishAsync(Run run, TrainConfig config, System.Text.Json.Nodes.JsonObject resolved, TrainResult result, PublishSettings publish)
    {
        try
        {
            var artifact = await ResultPublisher.PublishAsync(config, resolved, result, run.Spec.RunId, channels.For(publish.Registry), MeshAuth.Headers(mesh.Value.AuthToken), CancellationToken.None);
            return $"pushed {artifact.Manifest.Name}:{artifact.Version} to {publish.Registry}";
        }
        catch (Exception e) when (e is global::Grpc.Core.RpcException or IOException or ArgumentException or InvalidOperationException)
        {
            logger.LogError(e, "Run {RunId}: push to {Registry} failed", run.Spec.RunId, publish.Registry);
            return $"push to {publish.Registry} failed: {(e is global::Grpc.Core.RpcException rpc ? rpc.Status.Detail : e.Message)}";
        }
    }

    private static string JoinNotes(string? first, string second) => first is null ? second : $"{first}; {second}";

    /// <summary>Events go to the run synchronously (Progress&lt;T&gt; would post them to another thread).</summary>
    private sealed class Progress(Run run) : IProgress<TrainEvent>
    {
        public void Report(TrainEvent value) => run.Publish(value);
    }

    private static void SaveState(Run run, RunStatus status, string? error = null) =>
        AtomicFile.WriteAllText(Path.Combine(run.Folder, "state.json"), JsonSerializer.Serialize(new RunRecord(run.Spec.RunId, status, run.Recipe, error)));

    /// <summary>Picks up the runs on the volume; resumes those that were running or interrupted.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(Root))
            return Task.CompletedTask;
        foreach (var folder in Directory.GetDirectories(Root))
        {
            var specPath = Path.Combine(folder, "spec.json");
            if (!File.Exists(specPath))
                continue;
            var spec = JsonSerializer.Deserialize<RunSpec>(File.ReadAllText(specPath))!;
            var statePath = Path.Combine(folder, "state.json");
            var record = File.Exists(statePath) ? JsonSerializer.Deserialize<RunRecord>(File.ReadAllText(statePath)) : null;
            var run = new Run(spec, folder) { Recipe = record?.Recipe ?? "" };
            if (!_runs.TryAdd(spec.RunId, run))
                continue;
            if (record is null || record.Status is RunStatus.Running or RunStatus.Interrupted)
            {
                logger.LogInformation("Resuming run {RunId}", spec.RunId);
                Launch(run);
            }
            else
            {
                run.Finish(record.Status, record.Error);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>Running runs checkpoint and stop; they resume when the trainer starts again.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        var running = _runs.Values.Where(r => r.Status == RunStatus.Running).ToList();
        foreach (var run in running)
            run.Cancellation.Cancel();
        await Task.WhenAll(running.Select(r => r.Execution)).WaitAsync(options.Value.ShutdownGrace, cancellationToken).ConfigureAwait(false);
    }
}
