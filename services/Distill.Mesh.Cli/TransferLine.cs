using System.Diagnostics;

namespace Distill.Mesh.Cli;

/// <summary>
/// Progress of a push or pull on stderr: redrawn in place (at most four times a second) on a
/// terminal; otherwise a line at each quarter of the total (or every 5 s when it is unknown).
/// </summary>
internal sealed class TransferLine(TextWriter writer, string what, long? total, bool? plain = null)
{
    private readonly bool _plain = plain ?? (Console.IsErrorRedirected || !ReferenceEquals(writer, Console.Error));
    private readonly Stopwatch _watch = Stopwatch.StartNew();
    private readonly RateMeter _rate = new();
    private TimeSpan _shown = TimeSpan.MinValue;
    private int _quarter;
    private long _bytes;
    private bool _open;

    public void Report(long bytes)
    {
        _bytes = bytes;
        var now = _watch.Elapsed;
        var pace = _rate.Report(bytes, total ?? bytes, "", RateMeter.Bytes);
        if (_plain)
        {
            var quarter = total is > 0 ? (int)(4 * bytes / total.Value) : (int)(now.TotalSeconds / 5);
            if (quarter <= _quarter)
                return;
            _quarter = quarter;
        }
        else if (now - _shown < TimeSpan.FromMilliseconds(250))
        {
            return;
        }

        _shown = now;
        var line = $"{what}: {RateMeter.Bytes(bytes)}{(total is { } t ? $" of {RateMeter.Bytes(t)}" : "")}{(pace.Length > 0 ? $", {pace.Replace(" /s", "/s", StringComparison.Ordinal)}" : "")}";
        if (_plain)
        {
            writer.WriteLine(line);
        }
        else
        {
            writer.Write($"\r{line}   ");
            _open = true;
        }
    }

    /// <summary>The closing line: how much, how long, how fast.</summary>
    public void Finish()
    {
        var seconds = Math.Max(_watch.Elapsed.TotalSeconds, 1e-3);
        writer.WriteLine($"{(_open ? "\r" : "")}{what}: {RateMeter.Bytes(_bytes)} in {seconds:F1} s ({RateMeter.Bytes(_bytes / seconds)}/s)   ");
        _open = false;
    }
}
