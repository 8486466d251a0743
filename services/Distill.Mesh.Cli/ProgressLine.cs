using System.Diagnostics;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Cli;

/// <summary>One line per event when not on a terminal; otherwise a bar redrawn in place with an ETA.</summary>
/// <remarks>
/// The ETA comes from the steps' own durations (a moving average, so the first step's warm-up
/// fades), not from the time since the command started (which counted loading and tokenising and
/// made the first ETA wildly off). Events without durations (from the runs API) use the time
/// between reports instead.
/// </remarks>
/// <param name="writer">Where the lines go (stderr).</param>
/// <param name="plain">One line per event (not a terminal).</param>
/// <param name="clock">Time since start, for events without step durations (tests set it).</param>
/// <param name="label">What is training, shown before each line (e.g. "teacher").</param>
internal sealed class ProgressLine(TextWriter writer, bool plain, Func<TimeSpan>? clock = null, string? label = null) : IProgress<TrainEvent>
{
    private const double Smoothing = 0.3;

    private readonly Func<TimeSpan> _clock = clock ?? StartClock();
    private double _stepSeconds;
    private (long Step, TimeSpan At)? _firstReport;
    private bool _open;

    public void Report(TrainEvent e)
    {
        if (e.TotalSteps == 0)
        {
            // A note before the first step: the message alone.
            Finish();
            writer.WriteLine($"{(label is null ? "" : label + ": ")}{e.Message}");
            return;
        }

        var width = 20;
        var filled = (int)(width * e.Step / Math.Max(1, e.TotalSteps));
        var eta = Eta(e) is { } left ? Format(left) : "--:--";
        // SFT has no KD term: its loss is the cross-entropy alone.
        var parts = e.KdLoss == 0 ? "" : $" (kd {e.KdLoss:F4}, ce {e.CeLoss:F4})";
        var line = $"{(label is null ? "" : label + ": ")}step {e.Step}/{e.TotalSteps} [{new string('#', filled)}{new string('.', width - filled)}] loss {e.Loss:F4}{parts} lr {e.LearningRate:0.0e+0} {e.TokensPerSecond:N0} tok/s ETA {eta}";
        if (e.Message is not null || e.Eval is not null)
        {
            var eval = e.Eval is { } r ? $" eval ppl {r.Perplexity:F3}{(r.KlToTeacher is { } kl ? $" kl {kl:F4} top1 {r.Top1Agreement:P1}" : "")}" : "";
            writer.WriteLine($"{(plain ? "" : "\r")}{line}{eval}{(e.Message is null ? "" : $" — {e.Message}")}");
            _open = false;
        }
        else if (plain)
        {
            writer.WriteLine(line);
        }
        else
        {
            writer.Write($"\r{line}   ");
            _open = true;
        }
    }

    /// <summary>Time left, or null while there is nothing to estimate from.</summary>
    private TimeSpan? Eta(TrainEvent e)
    {
        var left = Math.Max(0, e.TotalSteps - e.Step);
        if (e.StepSeconds > 0)
        {
            _stepSeconds = _stepSeconds == 0 ? e.StepSeconds : (1 - Smoothing) * _stepSeconds + Smoothing * e.StepSeconds;
            return TimeSpan.FromSeconds(_stepSeconds * left);
        }

        var now = _clock();
        if (_firstReport is not { } first)
        {
            _firstReport = (e.Step, now);
            return null;
        }

        return e.Step > first.Step ? TimeSpan.FromSeconds((now - first.At).TotalSeconds / (e.Step - first.Step) * left) : null;
    }

    private static Func<TimeSpan> StartClock()
    {
        var watch = Stopwatch.StartNew();
        return () => watch.Elapsed;
    }

    private static string Format(TimeSpan left) => RateMeter.Clock(left);

    /// <summary>Ends a line redrawn in place, so what is written next starts on its own line.</summary>
    public void Finish()
    {
        if (_open)
            writer.WriteLine();
        _open = false;
    }
}
