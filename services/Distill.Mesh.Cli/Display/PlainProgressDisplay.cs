using System.Diagnostics;

namespace Distill.Mesh.Cli.Display;

/// <summary>Progress for logs (a file, a pipe, CI): plain lines, no escape codes, nothing redrawn.</summary>
/// <param name="writer">Where the lines go (stderr).</param>
/// <param name="clock">Time since any fixed start (tests set it).</param>
internal sealed class PlainProgressDisplay(TextWriter writer, Func<TimeSpan>? clock = null) : IProgressDisplay
{
    private readonly Func<TimeSpan> _clock = clock ?? Stopwatch.StartNew() switch { var watch => () => watch.Elapsed };

    public TextWriter Log => writer;

    public IProgressPhase Start(string label, double? total, ProgressUnit unit, PlainLines plainLines = PlainLines.EachUpdate) =>
        new Phase(writer, new PhaseState(label, total, unit, _clock), plainLines);

    public void Dispose()
    {
    }

    private sealed class Phase(TextWriter writer, PhaseState state, PlainLines plainLines) : IProgressPhase
    {
        private const double UnknownTotalSeconds = 5;

        private int _mark;

        public void Set(double done, string? detail = null, TimeSpan? unitDuration = null)
        {
            if (state.Ended)
                return;
            state.Set(done, detail, unitDuration);
            if (plainLines == PlainLines.Quarters)
            {
                var mark = state.Total is > 0 ? (int)(4 * done / state.Total.Value) : (int)(state.Elapsed().TotalSeconds / UnknownTotalSeconds);
                if (mark <= _mark)
                    return;
                _mark = mark;
            }

            writer.WriteLine(state.Line());
        }

        public void Note(string message) => writer.WriteLine(state.Prefix + message);

        public void Complete(string? summary = null)
        {
            if (state.Ended)
                return;
            state.End();
            writer.WriteLine(state.Prefix + (summary ?? state.Completion()));
        }

        public void Fail(string reason)
        {
            if (state.Ended)
                return;
            state.End();
            writer.WriteLine($"{state.Prefix}stopped at {state.Count()}: {reason}");
        }
    }
}
