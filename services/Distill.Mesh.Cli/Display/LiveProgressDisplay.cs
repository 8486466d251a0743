using System.Diagnostics;
using Spectre.Console;

namespace Distill.Mesh.Cli.Display;

/// <summary>
/// Progress on a terminal: Spectre.Console's live display, a bar per phase with its rate and an
/// ETA from <see cref="PaceEstimator"/> (recent samples, not the average since the start). Lines
/// written to <see cref="Log"/> go through the same console, which prints them above the bars.
/// </summary>
internal sealed class LiveProgressDisplay : IProgressDisplay
{
    private static LiveProgressDisplay? _active;

    private readonly IAnsiConsole _console;
    private readonly Func<TimeSpan> _clock;
    private readonly ManualResetEventSlim _ended = new();
    private readonly Thread _thread;
    private ProgressContext? _context;
    private bool _disposed;

    /// <param name="console">The terminal (tests: a TestConsole).</param>
    /// <param name="clock">Time since any fixed start, for rates and ETAs (tests set it).</param>
    public LiveProgressDisplay(IAnsiConsole console, Func<TimeSpan>? clock = null)
    {
        _console = console;
        _clock = clock ?? Stopwatch.StartNew() switch { var watch => () => watch.Elapsed };
        Log = new ConsoleLineWriter(console);
        var bar = DescriptionColumn.BarWidthFor(console.Profile.Width);
        var progress = console.Progress().AutoClear(false).HideCompleted(false).Columns(
            new DescriptionColumn(bar),
            new ProgressBarColumn { Width = bar },
            new PercentageColumn(),
            new RateColumn(),
            new EtaColumn());
        using var started = new ManualResetEventSlim();
        // Spectre's display lives as long as the callback it runs: a thread of its own holds it
        // open until Dispose, while the command's phases add and update tasks from anywhere.
        _thread = new Thread(() => progress.Start(context =>
        {
            _context = context;
            started.Set();
            _ended.Wait();
            context.Refresh();
        })) { IsBackground = true, Name = "progress display" };
        _thread.Start();
        started.Wait();
        _active = this;
    }

    public TextWriter Log { get; }

    public IProgressPhase Start(string label, double? total, ProgressUnit unit, PlainLines plainLines = PlainLines.EachUpdate)
    {
        var state = new PhaseState(label, total, unit, _clock);
        // A report that arrives after the display ended (from a queued callback) is shown nowhere.
        if (_disposed)
            return new PlainProgressDisplay(TextWriter.Null).Start(label, total, unit);
        var task = _context!.AddTask(Markup.Escape(Description(state)), new ProgressTaskSettings { MaxValue = total is > 0 ? total.Value : 1 });
        task.IsIndeterminate = total is not > 0;
        task.Tag = state;
        return new Phase(this, task, state);
    }

    /// <summary>
    /// Called when a second Ctrl-C ends the process at once (no Dispose runs): shows the cursor the
    /// display hid and ends its line, so the shell prompt starts clean.
    /// </summary>
    public static void RestoreTerminal()
    {
        if (_active is null)
            return;
        Console.Error.Write("\u001b[?25h\n");
        Console.Error.Flush();
    }

    /// <summary>Where the process's own notices (Ctrl-C) go while a live display runs; null when none does.</summary>
    public static TextWriter? ActiveLog => _active?.Log;

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _ended.Set();
        // Spectre draws the last frame and shows the cursor again before the thread ends.
        _thread.Join(TimeSpan.FromSeconds(5));
        Interlocked.CompareExchange(ref _active, null, this);
        _ended.Dispose();
    }

    private static string Description(PhaseState state) =>
        $"{state.Prefix}{state.Count()}{(state.Detail is { Length: > 0 } detail ? "  " + detail : "")}";

    private sealed class Phase(LiveProgressDisplay display, ProgressTask task, PhaseState state) : IProgressPhase
    {
        public void Set(double done, string? detail = null, TimeSpan? unitDuration = null)
        {
            if (state.Ended)
                return;
            state.Set(done, detail, unitDuration);
            if (!task.IsIndeterminate)
                task.Value = Math.Min(done, task.MaxValue);
            task.Description = Markup.Escape(Description(state));
        }

        public void Note(string message) => display.Log.WriteLine(state.Prefix + message);

        public void Complete(string? summary = null)
        {
            if (state.Ended)
                return;
            state.End();
            task.IsIndeterminate = false;
            task.Value = task.MaxValue;
            task.Description = Markup.Escape(state.Prefix + (summary ?? state.Completion()));
            task.StopTask();
        }

        public void Fail(string reason)
        {
            if (state.Ended)
                return;
            state.End();
            task.Description = $"[red]{Markup.Escape($"{state.Prefix}stopped at {state.Count()}: {reason}")}[/]";
            task.StopTask();
        }
    }
}
