using System.Globalization;
using System.Text.RegularExpressions;

namespace Distill.Mesh.Cli;

/// <summary>
/// Sizes as people write them and HF's max_shard_size takes them: "5GB" (10⁹), "500MiB" (2²⁰),
/// "2000000" (bytes). Written by hand: no package on the mirror parses them.
/// </summary>
internal static partial class ByteSizes
{
    private static readonly Dictionary<string, double> Units = new(StringComparer.OrdinalIgnoreCase)
    {
        [""] = 1, ["B"] = 1,
        ["KB"] = 1e3, ["MB"] = 1e6, ["GB"] = 1e9, ["TB"] = 1e12,
        ["KiB"] = 1L << 10, ["MiB"] = 1L << 20, ["GiB"] = 1L << 30, ["TiB"] = 1L << 40,
    };

    /// <summary>Bytes (at least 1) from <paramref name="text"/>; the error names <paramref name="option"/>.</summary>
    public static long Parse(string text, string option)
    {
        var match = SizePattern().Match(text);
        if (!match.Success || !Units.TryGetValue(match.Groups["unit"].Value, out var unit)
            || !double.TryParse(match.Groups["number"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            throw new ArgumentException($"{option} must be a size such as 5GB, 500MB, 2GiB or a number of bytes (got '{text}')");
        var bytes = Math.Floor(number * unit);
        if (bytes < 1 || bytes > long.MaxValue / 2)
            throw new ArgumentException($"{option} must be at least 1 byte and below 4 EiB (got '{text}')");
        return (long)bytes;
    }

    [GeneratedRegex(@"^\s*(?<number>[0-9]+(\.[0-9]+)?)\s*(?<unit>[A-Za-z]*)\s*$")]
    private static partial Regex SizePattern();
}
