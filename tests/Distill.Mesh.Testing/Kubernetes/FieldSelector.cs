using System.Text.Json.Nodes;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>
/// A parsed <c>fieldSelector</c> query: <c>path=value</c>, <c>path==value</c> or <c>path!=value</c> requirements on
/// any dotted field (<c>metadata.name</c>, <c>metadata.namespace</c>, <c>status.phase</c>, <c>spec.nodeName</c>...).
/// </summary>
internal sealed class FieldSelector
{
    private readonly List<(string[] Path, string Value, bool Equal)> _requirements = [];

    private FieldSelector()
    {
    }

    public static FieldSelector Everything { get; } = new();

    public static FieldSelector Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
            return Everything;
        var selector = new FieldSelector();
        foreach (var raw in text.Split(','))
        {
            var part = raw.Trim();
            var notEqual = part.IndexOf("!=", StringComparison.Ordinal);
            var equal = part.IndexOf('=');
            if (notEqual >= 0)
                selector._requirements.Add((Path(part[..notEqual], text), part[(notEqual + 2)..].Trim(), false));
            else if (equal >= 0)
                selector._requirements.Add((Path(part[..equal], text), part[(equal + 1)..].TrimStart('=').Trim(), true));
            else
                throw ApiError.BadRequest($"invalid field selector: '{part}' in \"{text}\"");
        }

        return selector;
    }

    public bool Matches(JsonObject obj) =>
        _requirements.All(r => (Lookup(obj, r.Path) == r.Value) == r.Equal);

    private static string[] Path(string text, string whole)
    {
        var path = text.Trim();
        if (path.Length == 0)
            throw ApiError.BadRequest($"invalid field selector: empty field in \"{whole}\"");
        return path.Split('.');
    }

    private static string Lookup(JsonObject obj, string[] path)
    {
        JsonNode? node = obj;
        foreach (var segment in path)
            node = (node as JsonObject)?[segment];
        // An absent field compares as "", which is how the real server treats, e.g., spec.nodeName= on an unscheduled pod.
        return node switch
        {
            null => "",
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            _ => node.ToJsonString(),
        };
    }
}
