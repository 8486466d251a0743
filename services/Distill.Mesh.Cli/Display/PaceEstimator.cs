namespace Distill.Mesh.Cli.Display;

/// <summary>
/// Rate and time left of a count that grows towards a total, from the most recent samples only:
/// the window keeps at least <see cref="MinSamples"/> samples covering at least
/// <see cref="MinSeconds"/> s and drops older ones, so a slow start (loading, warm-up) fades out
/// and a slowdown shows in the estimate within that window, not diluted by the whole history.
/// </summary>
/// <remarks>
/// A sample is the time between two reports that moved the count, with all the units done in it
/// (a run logging every tenth step: ten steps, and the evaluations and checkpoints among them,
/// which recur and so belong in an ETA). Where there is no such interval yet (the first report,
/// whose wait includes loading and tokenising), a measured duration of one unit is the sample
/// instead (a training step's own time). Until the first sample there is no estimate.
/// </remarks>
/// <param name="clock">Time since any fixed start (tests set it).</param>
internal sealed class PaceEstimator(Func<TimeSpan> clock)
{
    /// <summary>The window never holds fewer samples than this (once it has them).</summary>
    public const int MinSamples = 8;

    /// <summary>The window covers at least this much time (once it has it).</summary>
    public const double MinSeconds = 5;

    private const int MaxSamples = 10_000;

    private readonly Queue<(double Units, double Seconds)> _window = new();
    private double _units;
    private double _seconds;
    private (double Done, TimeSpan At)? _last;

    /// <summary>The count so far.</summary>
    public double Done { get; private set; }

    /// <summary>Units per second over the window; null until there is a sample.</summary>
    public double? PerSecond => _seconds > 0 && _units > 0 ? _units / _seconds : null;

    /// <summary>Records the count; <paramref name="unitDuration"/> is the measured time of one unit (a step), used when there is no interval to measure.</summary>
    public void Observe(double done, TimeSpan? unitDuration = null)
    {
        var now = clock();
        if (_last is { } last && done > last.Done && now > last.At)
            Add(done - last.Done, (now - last.At).TotalSeconds);
        else if (unitDuration is { TotalSeconds: > 0 } measured)
            Add(1, measured.TotalSeconds);
        // The time of the last move: a stall before the next one counts in that next sample.
        if (_last is null || done > _last.Value.Done)
            _last = (done, now);
        Done = done;
    }

    /// <summary>Time left to <paramref name="total"/> at the window's rate; null while unknown.</summary>
    public TimeSpan? Left(double? total) =>
        total is { } t && PerSecond is { } rate ? TimeSpan.FromSeconds(Math.Max(0, t - Done) / rate) : null;

    private void Add(double units, double seconds)
    {
        _window.Enqueue((units, seconds));
        (_units, _seconds) = (_units + units, _seconds + seconds);
        while (_window.Count > MaxSamples || (_window.Count > MinSamples && _seconds - _window.Peek().Seconds >= MinSeconds))
        {
            var old = _window.Dequeue();
            (_units, _seconds) = (_units - old.Units, _seconds - old.Seconds);
        }
    }
}
