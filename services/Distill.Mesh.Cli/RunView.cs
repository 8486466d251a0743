using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Specs.Runs;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Cli;

/// <summary>How `distill run watch` shows a run: a line per stage transition, a progress line for training, results as they come.</summary>
internal sealed class RunView(TextWriter error, TextWriter output)
{
    private readonly ProgressLine _steps = new(error, Console.IsErrorRedirected || !ReferenceEquals(error, Console.Error));
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

    public void Show(RunEvent e)
    {
        switch (e.EventCase)
        {
            case RunEvent.EventOneofCase.Snapshot:
                if (!_traced && e.Snapshot.TraceId.Length > 0)
                {
                    _traced = true;
                    error.WriteLine($"{e.RunId}: trace {e.Snapshot.TraceId}");
                }

                if (e.Phase is RunPhase.Succeeded or RunPhase.Failed or RunPhase.Cancelled)
                    _final = e.Snapshot;
                else
                    error.WriteLine($"{e.RunId}: {Phase(e.Phase)}; stages {string.Join(" → ", e.Snapshot.Stages.Select(s => $"{s.Name} ({s.State.ToString().ToLowerInvariant()})"))}");
                break;
            case RunEvent.EventOneofCase.Transition:
                _steps.Finish();
                error.WriteLine($"stage {e.Stage}: {e.Transition.State.ToString().ToLowerInvariant()}{(e.Transition.Message.Length > 0 ? $" — {e.Transition.Message}" : "")}");
                break;
            case RunEvent.EventOneofCase.Progress:
                error.WriteLine($"stage {e.Stage}: {e.Progress.Done}/{e.Progress.Total}");
                break;
            case RunEvent.EventOneofCase.Train:
                var t = e.Train;
                if (t.Step > 0)
                {
                    _steps.Report(new TrainEvent(t.Step, t.TotalSteps, t.Loss, t.KdLoss, t.CeLoss, t.LearningRate, t.GradNorm, t.TokensPerSecond, t.Tokens,
                        t.Eval is null ? null : new EvalResult(t.Eval.Perplexity, t.Eval.HasKlToTeacher ? t.Eval.KlToTeacher : null, t.Eval.HasTop1Agreement ? t.Eval.Top1Agreement : null, t.Eval.Tokens),
                        string.IsNullOrEmpty(t.Message) ? null : t.Message));
                }

                break;
            case RunEvent.EventOneofCase.Evaluate:
                var m = e.Evaluate.Metrics;
                error.WriteLine($"stage evaluate: perplexity {m.Perplexity:F3}{(m.HasKlToTeacher ? $", KL to teacher {m.KlToTeacher:F4}, top-1 agreement {m.Top1Agreement:P1}" : "")} over {m.Tokens} tokens");
                break;
            case RunEvent.EventOneofCase.Publish:
                error.WriteLine($"stage publish: pushed {e.Publish.Artifact}");
                break;
        }
    }

    public void Stopped()
    {
        _steps.Finish();
        error.WriteLine("stopped watching; the run goes on (`distill run watch` follows it again)");
    }

    /// <summary>The closing line; exit code 0 when the run succeeded.</summary>
    public int Finish(string runId)
    {
        _steps.Finish();
        if (_final is null)
        {
            output.WriteLine($"{runId}: the stream ended before the run did");
            return 1;
        }

        var reason = _final.Reason.Length > 0 && !string.Equals(_final.Reason, Phase(_final.Phase), StringComparison.OrdinalIgnoreCase) ? $" — {_final.Reason}" : "";
        output.WriteLine($"{runId}: {Phase(_final.Phase)}{reason}{(_final.Artifact.Length > 0 ? $"; published {_final.Artifact}" : "")}; outputs in {_final.OutputDir}");
        return _final.Phase == RunPhase.Succeeded ? 0 : 1;
    }
}
