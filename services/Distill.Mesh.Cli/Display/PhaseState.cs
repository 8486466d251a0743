namespace Distill.Mesh.Cli.Display;

/// <summary>A phase's count, detail and pace, and how they read; shared by the live and the plain display (updates and renders may come from different threads).</summary>
internal sealed class PhaseState(string label, double? total, ProgressUnit unit, Func<TimeSpan> clock)
{
    private const int BarWidth = 20;

    private readonly object _gate = new();
    private readonly PaceEstimator _pace = new(clock);
    private readonly TimeSpan _started = clock();
    private TimeSpan? _ended;
    private (double Done, TimeSpan At)? _first;

    public string Label => label;

    public double? Total => total;

    public string? Detail { get; private set; }

    /// <summary>"label: " (nothing for an unnamed phase), before each plain line.</summary>
    public string Prefix => label.Length > 0 ? label + ": " : "";

    public bool Ended
    {
        get
        {
            lock (_gate)
                return _ended is not null;
        }
    }

    public double Done
    {
        get
        {
            lock (_gate)
                return _pace.Done;
        }
    }

    public void Set(double done, string? detail, TimeSpan? unitDuration)
    {
        lock (_gate)
        {
            _first ??= (done, clock());
            _pace.Observe(done, unitDuration);
            Detail = detail;
        }
    }

    public void End()
    {
        lock (_gate)
            _ended ??= clock();
    }

    /// <summary>e.g. "2.1 tensors/s"; null while unknown.</summary>
    public string? Rate()
    {
        lock (_gate)
            return _pace.PerSecond is { } rate ? unit.Rate(rate) : null;
    }

    /// <summary>"ETA 0:40" ("ETA --:--" while unknown); empty without a total.</summary>
    public string Eta()
    {
        lock (_gate)
            return total is null ? "" : $"ETA {(_pace.Left(total) is { } left ? ProgressUnit.Clock(left) : "--:--")}";
    }

    public TimeSpan Elapsed()
    {
        lock (_gate)
            return (_ended ?? clock()) - _started;
    }

    /// <summary>e.g. "step 3/10" or "1.2 MB of 4.0 MB".</summary>
    public string Count() => unit.Count(Done, total);

    /// <summary>What a log shows: "label: step 3/10 [######..............] loss 2.5000, 2.1 steps/s, ETA 0:03".</summary>
    public string Line()
    {
        var bar = total is > 0 ? $" [{Bar(Done / total.Value)}]" : "";
        var rest = string.Join(", ", new[] { Detail, Rate(), Eta() }.Where(p => !string.IsNullOrEmpty(p)));
        return $"{Prefix}{Count()}{bar}{(rest.Length > 0 ? " " + rest : "")}";
    }

    /// <summary>The closing words: "step 10/10 in 4.2 s (2.38 steps/s on average)", the average over the updates this phase saw.</summary>
    public string Completion()
    {
        var elapsed = Elapsed();
        string average;
        lock (_gate)
        {
            // From the first update: a phase that first hears of its work part-way (a run's first
            // logged step is its tenth) would otherwise count work done before it started.
            var (done, at) = _first ?? (0, _started);
            var seconds = ((_ended ?? clock()) - at).TotalSeconds;
            average = seconds > 0 && _pace.Done > done ? unit.Rate((_pace.Done - done) / seconds) : unit.Rate(_pace.Done / Math.Max(elapsed.TotalSeconds, 1e-3));
        }

        return $"{Count()} in {elapsed.TotalSeconds.ToString("F1", System.Globalization.CultureInfo.InvariantCulture)} s ({average} on average)";
    }

    private static string Bar(double fraction)
    {
        var filled = (int)(BarWidth * Math.Clamp(fraction, 0, 1));
        return new string('#', filled) + new string('.', BarWidth - filled);
    }
}
