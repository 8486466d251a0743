using System.Diagnostics;
using System.Globalization;

namespace Distill.Mesh.Cli;

/// <summary>
/// Rate and time left of a count that grows towards a total (tensors extracted, bytes sent): an
/// exponential moving average of the rate between reports, so a slow start fades.
/// </summary>
internal sealed class RateMeter(Func<TimeSpan>? clock = null)
{
    private const double Smoothing = 0.3;

    private readonly Func<TimeSpan> _clock = clock ?? Stopwatch.StartNew() switch { var watch => () => watch.Elapsed };
    private (double Done, TimeSpan At)? _last;
    private double _perSecond;

    /// <summary>Records <paramref name="done"/> of <paramref name="total"/>; returns e.g. "2.1 tensors/s, ETA 0:37" (empty until a rate is known).</summary>
    public string Report(double done, double total, string unit, Func<double, string>? format = null)
    {
        var now = _clock();
        if (_last is { } last && now > last.At && done > last.Done)
        {
            var rate = (done - last.Done) / (now - last.At).TotalSeconds;
            _perSecond = _perSecond == 0 ? rate : (1 - Smoothing) * _perSecond + Smoothing * rate;
        }

        if (_last is null || done > _last.Value.Done)
            _last = (done, now);
        if (_perSecond <= 0)
            return "";
        var left = TimeSpan.FromSeconds(Math.Max(0, total - done) / _perSecond);
        return $"{(format ?? (v => v.ToString("G3", CultureInfo.InvariantCulture)))(_perSecond)} {unit}/s, ETA {Clock(left)}";
    }

    /// <summary>Time left as m:ss, or h:mm:ss past an hour.</summary>
    public static string Clock(TimeSpan left) => left.TotalHours >= 1 ? $"{(int)left.TotalHours}:{left:mm\\:ss}" : $"{left:m\\:ss}";

    /// <summary>Bytes as people read them (B, kB, MB, GB; powers of 1000).</summary>
    public static string Bytes(double bytes) => bytes switch
    {
        >= 1e9 => (bytes / 1e9).ToString("F2", CultureInfo.InvariantCulture) + " GB",
        >= 1e6 => (bytes / 1e6).ToString("F1", CultureInfo.InvariantCulture) + " MB",
        >= 1e3 => (bytes / 1e3).ToString("F1", CultureInfo.InvariantCulture) + " kB",
        _ => bytes.ToString("F0", CultureInfo.InvariantCulture) + " B",
    };
}
