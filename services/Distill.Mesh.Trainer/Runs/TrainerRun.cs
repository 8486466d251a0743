using System.Threading.Channels;
using Distill.Mesh.Specs.Runs;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Trainer.Runs;

/// <summary>What a watcher receives: a train step, or a stage's new state; with the run's status after it.</summary>
public sealed record RunUpdate(TrainEvent? Step, StageRecord? Stage, RunStatus Status, string? Message = null);

/// <summary>
/// One run in memory: its spec, its stages' states (persisted by the manager), the train stage's step
/// history, and the watchers its updates fan out to.
/// </summary>
public sealed class TrainerRun(RunSpecRecord record, ParsedRunSpec spec, string folder)
{
    private readonly Lock _lock = new();
    private readonly List<TrainEvent> _history = [];
    private readonly List<Channel<RunUpdate>> _watchers = [];
    private List<StageRecord> _stages = [.. spec.Spec.Stages.Select(s => new StageRecord(s))];

    /// <summary>What the run was started with; its Stages are the ones this trainer runs (empty: all).</summary>
    public RunSpecRecord Record { get; private set; } = record;

    /// <summary>Whether this trainer runs <paramref name="stage"/> (a Kubernetes pod runs one stage of a run).</summary>
    public bool Runs(string stage) => Record.Stages.Count == 0 || Record.Stages.Contains(stage, StringComparer.Ordinal);

    /// <summary>Another slice of the run's stages for this trainer (a later stage's pod).</summary>
    public void Refilter(IReadOnlyList<string> stages) => Record = Record with { Stages = stages };

    public ParsedRunSpec Spec { get; } = spec;

    public string RunId => Record.RunId;

    public string Folder { get; } = folder;

    public RunStatus Status { get; private set; } = RunStatus.Running;

    public string Recipe => Spec.Spec.Train.Recipe;

    public string? Error { get; private set; }

    /// <summary>The final note (cache hits, what was pushed) of a finished run.</summary>
    public string? Note { get; private set; }

    public CancellationTokenSource Cancellation { get; set; } = new();

    public bool CancelledByUser { get; set; }

    public Task Execution { get; set; } = Task.CompletedTask;

    public IReadOnlyList<StageRecord> Stages
    {
        get
        {
            lock (_lock)
                return [.. _stages];
        }
    }

    public TrainEvent? Last
    {
        get
        {
            lock (_lock)
                return _history.Count > 0 ? _history[^1] : null;
        }
    }

    /// <summary>The artifact the publish stage pushed, if it did.</summary>
    public string? Artifact => Stages.FirstOrDefault(s => s.Name == Stage.Publish && s.State == StageState.Succeeded)?.Output;

    /// <summary>Restores stage states read back from state.json.</summary>
    public void Restore(IReadOnlyList<StageRecord>? stages)
    {
        if (stages is null)
            return;
        lock (_lock)
            _stages = [.. _stages.Select(s => stages.FirstOrDefault(r => r.Name == s.Name) ?? s)];
    }

    public void Publish(TrainEvent e)
    {
        lock (_lock)
        {
            if (e.Step > 0 && (_history.Count == 0 || e.Step > _history[^1].Step || e.Eval is not null || e.Message is not null))
                _history.Add(e);
            Send(new RunUpdate(e, null, Status));
        }
    }

    /// <summary>Replaces a stage's record, runs <paramref name="persist"/> (the record is saved before anyone hears of it), then tells the watchers.</summary>
    public void Update(StageRecord stage, Action? persist = null)
    {
        lock (_lock)
        {
            var index = _stages.FindIndex(s => s.Name == stage.Name);
            _stages[index] = stage;
            StageMetrics.Record(RunId, stage);
            persist?.Invoke();
            Send(new RunUpdate(null, stage, Status));
        }
    }

    private void Send(RunUpdate update)
    {
        foreach (var watcher in _watchers)
            watcher.Writer.TryWrite(update);
    }

    public void Finish(RunStatus status, string? error, string? note = null)
    {
        lock (_lock)
        {
            Status = status;
            Error = error;
            Note = note;
            foreach (var watcher in _watchers)
            {
                watcher.Writer.TryWrite(new RunUpdate(null, null, status, error ?? note ?? status.ToString().ToLowerInvariant()));
                watcher.Writer.TryComplete();
            }

            _watchers.Clear();
        }
    }

    public void Restart()
    {
        lock (_lock)
        {
            Status = RunStatus.Running;
            Error = null;
            Note = null;
        }
    }

    /// <summary>The history so far (steps, then the stages as they are), then live updates until the run ends.</summary>
    public async IAsyncEnumerable<RunUpdate> WatchAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateUnbounded<RunUpdate>();
        List<TrainEvent> replay;
        List<StageRecord> stages;
        RunStatus status;
        lock (_lock)
        {
            replay = [.. _history];
            stages = [.. _stages];
            status = Status;
            if (status == RunStatus.Running)
                _watchers.Add(channel);
        }

        foreach (var e in replay)
            yield return new RunUpdate(e, null, RunStatus.Running);
        foreach (var stage in stages.Where(s => s.State != StageState.Pending))
            yield return new RunUpdate(null, stage, RunStatus.Running);
        if (status != RunStatus.Running)
        {
            yield return new RunUpdate(null, null, status, Error ?? Note ?? status.ToString().ToLowerInvariant());
            yield break;
        }

        await foreach (var item in channel.Reader.ReadAllAsync(cancellationToken))
            yield return item;
    }
}
