using System.Globalization;

namespace Distill.Mesh.Cli.Display;

/// <summary>What a phase counts, and how its count and rate read (steps, tensors, rows, bytes...).</summary>
/// <param name="Name">The plural, for rates ("tensors" → "2.1 tensors/s").</param>
/// <param name="Count">The count of a total, e.g. "step 3/10", "3/10 tensors", "1.2 MB of 4.0 MB".</param>
/// <param name="Rate">A rate per second, e.g. "2.1 tensors/s", "12.3 MB/s".</param>
internal sealed record ProgressUnit(string Name, Func<double, double?, string> Count, Func<double, string> Rate)
{
    public static readonly ProgressUnit Steps = new("steps", (done, total) => $"step {done:0}{(total is { } t ? $"/{t:0}" : "")}", rate => $"{Significant(rate)} steps/s");

    public static readonly ProgressUnit Bytes = new("bytes", (done, total) => $"{ByteSize(done)}{(total is { } t ? $" of {ByteSize(t)}" : "")}", rate => $"{ByteSize(rate)}/s");

    /// <summary>Items of a kind: "3/10 tensors", "2.1 tensors/s".</summary>
    public static ProgressUnit Of(string name) =>
        new(name, (done, total) => $"{done.ToString("N0", CultureInfo.InvariantCulture)}{(total is { } t ? $"/{t.ToString("N0", CultureInfo.InvariantCulture)}" : "")} {name}", rate => $"{Significant(rate)} {name}/s");

    /// <summary>Time left as m:ss, or h:mm:ss past an hour.</summary>
    public static string Clock(TimeSpan left) => left.TotalHours >= 1 ? $"{(int)left.TotalHours}:{left:mm\\:ss}" : $"{left:m\\:ss}";

    /// <summary>Bytes as people read them (B, kB, MB, GB; powers of 1000).</summary>
    public static string ByteSize(double bytes) => bytes switch
    {
        >= 1e9 => (bytes / 1e9).ToString("F2", CultureInfo.InvariantCulture) + " GB",
        >= 1e6 => (bytes / 1e6).ToString("F1", CultureInfo.InvariantCulture) + " MB",
        >= 1e3 => (bytes / 1e3).ToString("F1", CultureInfo.InvariantCulture) + " kB",
        _ => bytes.ToString("F0", CultureInfo.InvariantCulture) + " B",
    };

    /// <summary>Three significant digits, without exponents: 0.111, 2.5, 42.3, 1,234.</summary>
    private static string Significant(double value) => value >= 100 ? value.ToString("N0", CultureInfo.InvariantCulture) : value.ToString("G3", CultureInfo.InvariantCulture);
}
