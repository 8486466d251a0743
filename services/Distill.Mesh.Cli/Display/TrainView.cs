using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Cli.Display;

/// <summary>
/// A training run's events on a display: the steps as one phase (loss parts, learning rate,
/// tokens/s next to the bar; the ETA from the time between recent reports, the first from its
/// step's own duration, so loading and a slow first step do not count), tokenising as a phase of
/// its own, notes and evaluations as lines that stay.
/// </summary>
/// <param name="display">Where it shows.</param>
/// <param name="label">What is training (e.g. "teacher"); empty for a command that trains one thing.</param>
internal sealed class TrainView(IProgressDisplay display, string label = "") : IProgress<TrainEvent>
{
    private IProgressPhase? _steps;
    private IProgressPhase? _preparing;

    public void Report(TrainEvent e)
    {
        if (e.Preparing is { } p)
        {
            _preparing ??= display.Start(Named(p.Phase), p.Total, ProgressUnit.Of(p.Unit));
            _preparing.Set(p.Done);
            if (p.Done >= p.Total)
            {
                _preparing.Complete();
                _preparing = null;
            }

            return;
        }

        // Tokenising reports every tenth of the way, so its last report may fall short of the total:
        // whatever comes next means it is over.
        _preparing?.Complete();
        _preparing = null;
        if (e.TotalSteps == 0)
        {
            // A note before the first step: the message alone.
            display.Log.WriteLine($"{(label.Length > 0 ? label + ": " : "")}{e.Message}");
            return;
        }

        _steps ??= display.Start(label, e.TotalSteps, ProgressUnit.Steps);
        // SFT has no KD term: its loss is the cross-entropy alone.
        var parts = e.KdLoss == 0 ? "" : $" (kd {e.KdLoss:F4}, ce {e.CeLoss:F4})";
        _steps.Set(e.Step, $"loss {e.Loss:F4}{parts} lr {e.LearningRate:0.0e+0} {e.TokensPerSecond:N0} tok/s", e.StepSeconds > 0 ? TimeSpan.FromSeconds(e.StepSeconds) : null);
        if (e.Message is not null || e.Eval is not null)
        {
            var eval = e.Eval is { } r ? $" eval ppl {r.Perplexity:F3}{(r.KlToTeacher is { } kl ? $" kl {kl:F4} top1 {r.Top1Agreement:P1}" : "")}" : "";
            _steps.Note($"step {e.Step}:{eval}{(e.Message is null ? "" : $" — {e.Message}")}");
        }

        if (e.Step >= e.TotalSteps)
            _steps.Complete();
    }

    /// <summary>The run stopped before its last step (Ctrl-C, a cancelled run): its bar says so.</summary>
    public void Stopped(string reason) => _steps?.Fail(reason);

    private string Named(string phase) => label.Length > 0 ? $"{label} {phase}" : phase;
}
