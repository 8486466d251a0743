using Distill.Mesh.Cli.Display;
using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Specs.Runs;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Cli;

/// <summary>How `distill run watch` shows a run: a line per stage transition, a bar per stage with a count (training's steps, precompute's sequences, extraction's tensors), results as they come.</summary>
internal sealed class RunView(TextWriter error, TextWriter output) : IDisposable
{
    private readonly IProgressDisplay _display = ProgressDisplays.For(error);
    private readonly Dictionary<string, IProgressPhase> _stages = [];
    private TrainView? _steps;
    private Run? _final;

    public static string Phase(RunPhase phase) => phase.ToString().ToLowerInvariant();

    public static string Progress(Run run)
    {
        var stage = run.Stages.FirstOrDefault(s => s.Name == run.CurrentStage) ?? run.Stages.LastOrDefault(s => s.State != StageState.Pending);
        if (stage is { Total: > 0 })
            return $"{stage.Done}/{stage.Total}";
        // Training counts steps, not items.
        return stage?.Name == Stage.Train && run.Progress is { TotalSteps: > 0 } progress ? $"step {progress.Step}/{progress.TotalSteps}" : "";
    }

    private bool _traced;

    /// <summary>A step of the runs API's stream as the trainer reported it.</summary>
    public static TrainEvent TrainEventOf(Contracts.Runs.V1.TrainProgress t) =>
        new(t.Step, t.TotalSteps, t.Loss, t.KdLoss, t.CeLoss, t.LearningRate, t.GradNorm, t.TokensPerSecond, t.Tokens,
            t.Eval is null ? null : new EvalResult(t.Eval.Perplexity, t.Eval.HasKlToTeacher ? t.Eval.KlToTeacher : null, t.Eval.HasTop1Agreement ? t.Eval.Top1Agreement : null, t.Eval.Tokens),
            string.IsNullOrEmpty(t.Message) ? null : t.Message);

    public void Show(RunEvent e)
    {
        var log = _display.Log;
        switch (e.EventCase)
        {
            case RunEvent.EventOneofCase.Snapshot:
                if (!_traced && e.Snapshot.TraceId.Length > 0)
                {
                    _traced = true;
                    log.WriteLine($"{e.RunId}: trace {e.Snapshot.TraceId}");
                }

                if (e.Phase is RunPhase.Succeeded or RunPhase.Failed or RunPhase.Cancelled)
                    _final = e.Snapshot;
                else
                    log.WriteLine($"{e.RunId}: {Phase(e.Phase)}; stages {string.Join(" → ", e.Snapshot.Stages.Select(s => $"{s.Name} ({s.State.ToString().ToLowerInvariant()})"))}");
                break;
            case RunEvent.EventOneofCase.Transition:
                var state = e.Transition.State.ToString().ToLowerInvariant();
                if (e.Transition.State is StageState.Failed or StageState.Cancelled)
                {
                    if (e.Stage == Stage.Train)
                        _steps?.Stopped(state);
                    if (_stages.Remove(e.Stage, out var stopped))
                        stopped.Fail(state);
                }
                else if (e.Transition.State == StageState.Succeeded && _stages.Remove(e.Stage, out var ended))
                {
                    ended.Complete();
                }

                log.WriteLine($"stage {e.Stage}: {state}{(e.Transition.Message.Length > 0 ? $" — {e.Transition.Message}" : "")}");
                break;
            case RunEvent.EventOneofCase.Progress:
                if (!_stages.TryGetValue(e.Stage, out var phase))
                    _stages[e.Stage] = phase = _display.Start($"stage {e.Stage}", e.Progress.Total > 0 ? e.Progress.Total : null, ProgressUnit.Of(UnitOf(e.Stage)));
                phase.Set(e.Progress.Done, e.Progress.Detail.Length > 0 ? e.Progress.Detail : null);
                break;
            case RunEvent.EventOneofCase.Train:
                if (e.Train.Step > 0)
                    (_steps ??= new TrainView(_display, $"stage {Stage.Train}")).Report(TrainEventOf(e.Train));
                break;
            case RunEvent.EventOneofCase.Evaluate:
                var m = e.Evaluate.Metrics;
                log.WriteLine($"stage evaluate: perplexity {m.Perplexity:F3}{(m.HasKlToTeacher ? $", KL to teacher {m.KlToTeacher:F4}, top-1 agreement {m.Top1Agreement:P1}" : "")} over {m.Tokens} tokens");
                break;
            case RunEvent.EventOneofCase.Publish:
                log.WriteLine($"stage publish: pushed {e.Publish.Artifact}");
                break;
        }
    }

    /// <summary>What a stage without steps counts.</summary>
    private static string UnitOf(string stage) => stage switch
    {
        Stage.Precompute => "sequences",
        Stage.Extract => "tensors",
        _ => "items",
    };

    public void Stopped()
    {
        _display.Dispose();
        error.WriteLine("stopped watching; the run goes on (`distill run watch` follows it again)");
    }

    /// <summary>The closing line; exit code 0 when the run succeeded.</summary>
    public int Finish(string runId)
    {
        _display.Dispose();
        if (_final is null)
        {
            output.WriteLine($"{runId}: the stream ended before the run did");
            return 1;
        }

        var reason = _final.Reason.Length > 0 && !string.Equals(_final.Reason, Phase(_final.Phase), StringComparison.OrdinalIgnoreCase) ? $" — {_final.Reason}" : "";
        output.WriteLine($"{runId}: {Phase(_final.Phase)}{reason}{(_final.Artifact.Length > 0 ? $"; published {_final.Artifact}" : "")}; outputs in {_final.OutputDir}");
        return _final.Phase == RunPhase.Succeeded ? 0 : 1;
    }

    public void Dispose() => _display.Dispose();
}
