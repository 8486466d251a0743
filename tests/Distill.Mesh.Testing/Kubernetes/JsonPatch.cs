using System.Text.Json.Nodes;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>JSON patch (RFC 6902): add, remove, replace, move, copy and test, on JSON pointers (RFC 6901).</summary>
internal static class JsonPatch
{
    /// <summary>Applies the operations in order to a copy of <paramref name="document"/>; a failed op is a 422.</summary>
    public static JsonNode? Apply(JsonNode? document, JsonArray operations)
    {
        // A holder object lets the empty pointer ("" = the whole document) be treated like any other member.
        var holder = new JsonObject { ["doc"] = document?.DeepClone() };
        foreach (var node in operations)
        {
            if (node is not JsonObject op || op["op"]?.GetValue<string>() is not { } name || op["path"]?.GetValue<string>() is not { } path)
                throw ApiError.Invalid("json patch: every operation needs \"op\" and \"path\"");
            var tokens = Tokens(path);
            switch (name)
            {
                case "add":
                    Add(holder, tokens, Value(op), path);
                    break;
                case "remove":
                    Remove(holder, tokens, path);
                    break;
                case "replace":
                    Remove(holder, tokens, path);
                    Add(holder, tokens, Value(op), path);
                    break;
                case "move":
                    var moveFrom = Tokens(From(op));
                    var moved = Get(holder, moveFrom, From(op));
                    Remove(holder, moveFrom, From(op));
                    Add(holder, tokens, moved, path);
                    break;
                case "copy":
                    Add(holder, tokens, Get(holder, Tokens(From(op)), From(op))?.DeepClone(), path);
                    break;
                case "test":
                    if (!JsonNode.DeepEquals(Get(holder, tokens, path), op["value"]))
                        throw ApiError.Invalid($"json patch: testing value {path} failed");
                    break;
                default:
                    throw ApiError.Invalid($"json patch: unknown operation \"{name}\"");
            }
        }

        return holder["doc"]?.DeepClone();
    }

    private static JsonNode? Value(JsonObject op) =>
        op.TryGetPropertyValue("value", out var value) ? value?.DeepClone() : throw ApiError.Invalid("json patch: operation needs \"value\"");

    private static string From(JsonObject op) =>
        op["from"]?.GetValue<string>() ?? throw ApiError.Invalid("json patch: operation needs \"from\"");

    private static List<string> Tokens(string pointer)
    {
        if (pointer.Length > 0 && pointer[0] != '/')
            throw ApiError.Invalid($"json patch: invalid pointer \"{pointer}\"");
        var tokens = new List<string> { "doc" };
        if (pointer.Length > 0)
            tokens.AddRange(pointer[1..].Split('/').Select(t => t.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)));
        return tokens;
    }

    private static JsonNode? Get(JsonObject holder, List<string> tokens, string path)
    {
        JsonNode? node = holder;
        foreach (var token in tokens)
        {
            node = node switch
            {
                JsonObject o when o.TryGetPropertyValue(token, out var child) => child,
                JsonArray a when int.TryParse(token, out var i) && i >= 0 && i < a.Count => a[i],
                _ => throw ApiError.Invalid($"json patch: path {path} does not exist"),
            };
        }

        return node;
    }

    private static void Add(JsonObject holder, List<string> tokens, JsonNode? value, string path)
    {
        var parent = Get(holder, tokens[..^1], path);
        var last = tokens[^1];
        switch (parent)
        {
            case JsonObject o:
                o[last] = value;
                break;
            case JsonArray a when last == "-":
                a.Add(value);
                break;
            case JsonArray a when int.TryParse(last, out var i) && i >= 0 && i <= a.Count:
                a.Insert(i, value);
                break;
            default:
                throw ApiError.Invalid($"json patch: cannot add at {path}");
        }
    }

    private static void Remove(JsonObject holder, List<string> tokens, string path)
    {
        var parent = Get(holder, tokens[..^1], path);
        var last = tokens[^1];
        switch (parent)
        {
            case JsonObject o when o.ContainsKey(last):
                o.Remove(last);
                break;
            case JsonArray a when int.TryParse(last, out var i) && i >= 0 && i < a.Count:
                a.RemoveAt(i);
                break;
            default:
                throw ApiError.Invalid($"json patch: path {path} does not exist");
        }
    }
}
