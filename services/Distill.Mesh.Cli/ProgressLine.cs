using System.Diagnostics;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Cli;

/// <summary>One line per event when not on a terminal; otherwise a bar redrawn in place with an ETA.</summary>
internal sealed class ProgressLine(TextWriter writer, bool plain) : IProgress<TrainEvent>
{
    private readonly Stopwatch _watch = Stopwatch.StartNew();
    private long _firstStep = -1;

    public void Report(TrainEvent e)
    {
        if (_firstStep < 0)
            _firstStep = e.Step - 1;
        var done = e.Step - _firstStep;
        var eta = done > 0 ? TimeSpan.FromSeconds(_watch.Elapsed.TotalSeconds / done * (e.TotalSteps - e.Step)) : TimeSpan.Zero;
        var width = 20;
        var filled = (int)(width * e.Step / Math.Max(1, e.TotalSteps));
        var line = $"step {e.Step}/{e.TotalSteps} [{new string('#', filled)}{new string('.', width - filled)}] loss {e.Loss:F4} (kd {e.KdLoss:F4}, ce {e.CeLoss:F4}) lr {e.LearningRate:0.0e+0} {e.TokensPerSecond:N0} tok/s ETA {eta:m\\:ss}";
        if (e.Message is not null || e.Eval is not null)
        {
            var eval = e.Eval is { } r ? $" eval ppl {r.Perplexity:F3}{(r.KlToTeacher is { } kl ? $" kl {kl:F4} top1 {r.Top1Agreement:P1}" : "")}" : "";
            writer.WriteLine($"{(plain ? "" : "\r")}{line}{eval}{(e.Message is null ? "" : $" — {e.Message}")}");
        }
        else if (plain)
        {
            writer.WriteLine(line);
        }
        else
        {
            writer.Write($"\r{line}   ");
        }
    }

    public void Finish()
    {
        if (!plain)
            writer.WriteLine();
    }
}
