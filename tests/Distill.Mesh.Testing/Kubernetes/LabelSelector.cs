using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>
/// A parsed <c>labelSelector</c> query: equality (<c>a=b</c>, <c>a==b</c>, <c>a!=b</c>), set-based
/// (<c>a in (x,y)</c>, <c>a notin (x)</c>) and existence (<c>a</c>, <c>!a</c>) requirements, all of which must hold.
/// </summary>
internal sealed partial class LabelSelector
{
    private readonly List<Func<JsonObject?, bool>> _requirements = [];

    private LabelSelector()
    {
    }

    public static LabelSelector Everything { get; } = new();

    /// <summary>Parses a selector; an empty or absent one selects everything. Throws a 400 on bad syntax.</summary>
    public static LabelSelector Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
            return Everything;
        var selector = new LabelSelector();
        foreach (var part in SplitTopLevel(text))
            selector._requirements.Add(ParseRequirement(part.Trim(), text));
        return selector;
    }

    public bool Matches(JsonObject obj) =>
        _requirements.All(r => r(obj["metadata"]?["labels"] as JsonObject));

    private static Func<JsonObject?, bool> ParseRequirement(string part, string whole)
    {
        if (part.Length == 0)
            throw ApiError.BadRequest($"unable to parse requirement: empty requirement in \"{whole}\"");
        var set = SetRequirement().Match(part);
        if (set.Success)
        {
            var key = set.Groups["key"].Value;
            var values = set.Groups["values"].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
            return set.Groups["op"].Value == "in"
                ? labels => Value(labels, key) is { } v && values.Contains(v)
                : labels => Value(labels, key) is not { } v || !values.Contains(v);
        }

        if (part.StartsWith('!'))
        {
            var key = Key(part[1..], whole);
            return labels => Value(labels, key) is null;
        }

        var notEqual = part.IndexOf("!=", StringComparison.Ordinal);
        if (notEqual >= 0)
        {
            var key = Key(part[..notEqual], whole);
            var value = part[(notEqual + 2)..].Trim();
            return labels => Value(labels, key) != value;
        }

        var equal = part.IndexOf('=');
        if (equal >= 0)
        {
            var key = Key(part[..equal], whole);
            var value = part[(equal + 1)..].TrimStart('=').Trim();
            return labels => Value(labels, key) == value;
        }

        var existing = Key(part, whole);
        return labels => Value(labels, existing) is not null;
    }

    private static string Key(string text, string whole)
    {
        var key = text.Trim();
        if (!LabelKey().IsMatch(key))
            throw ApiError.BadRequest($"unable to parse requirement: invalid label key \"{key}\" in \"{whole}\"");
        return key;
    }

    private static string? Value(JsonObject? labels, string key) =>
        labels is not null && labels.TryGetPropertyValue(key, out var node) && node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    /// <summary>Splits on the commas that separate requirements, not those inside <c>in (a,b)</c>.</summary>
    internal static IEnumerable<string> SplitTopLevel(string text)
    {
        var depth = 0;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '(':
                    depth++;
                    break;
                case ')':
                    depth--;
                    break;
                case ',' when depth == 0:
                    yield return text[start..i];
                    start = i + 1;
                    break;
            }
        }

        yield return text[start..];
    }

    [GeneratedRegex(@"^(?<key>[A-Za-z0-9._/-]+)\s+(?<op>in|notin)\s*\((?<values>[^)]*)\)$")]
    private static partial Regex SetRequirement();

    [GeneratedRegex(@"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")]
    private static partial Regex LabelKey();
}
