using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Distill.Mesh.Specs.Configuration;

/// <summary>
/// Binds a parsed YAML/JSON tree to a config type after checking it against the type, so every
/// problem is reported in plain words with its key (and YAML line when known): unknown keys with a
/// "did you mean", values of the wrong kind ("training.max_steps: 'abc' is not an integer"), and
/// nulls where a section or value is required. All problems are collected, not just the first.
/// </summary>
public static class ConfigBinder
{
    /// <summary>Checks <paramref name="tree"/> against <typeparamref name="T"/>, then binds it.</summary>
    /// <exception cref="ConfigException">Every problem found, one per line.</exception>
    /// <param name="tree">The parsed tree.</param>
    /// <param name="source">What it came from, for messages.</param>
    /// <param name="lines">YAML lines by dotted key, when known.</param>
    /// <param name="siblings">Other top-level keys the same text may hold (the run sections beside a recipe): offered as suggestions.</param>
    public static T Bind<T>(JsonObject tree, string source, IReadOnlyDictionary<string, int>? lines = null, IEnumerable<string>? siblings = null)
        where T : new()
    {
        var problems = new List<string>();
        CheckObject(tree, typeof(T), "", problems, lines, siblings?.ToList() ?? []);
        Fail(source, problems);
        try
        {
            return tree.Deserialize<T>(TrainConfigLoader.Json) ?? new T();
        }
        catch (JsonException e)
        {
            throw new ConfigException($"{source}: {(e.Path ?? "").TrimStart('$', '.')}: {e.Message}", e);
        }
    }

    /// <summary>Throws one <see cref="ConfigException"/> listing <paramref name="problems"/>, if there are any.</summary>
    public static void Fail(string source, IReadOnlyList<string> problems)
    {
        if (problems.Count == 1)
            throw new ConfigException($"{source}: {problems[0]}");
        if (problems.Count > 1)
            throw new ConfigException($"{source}: {problems.Count} problems:\n  - {string.Join("\n  - ", problems.Take(30))}{(problems.Count > 30 ? $"\n  - … {problems.Count - 30} more" : "")}");
    }

    /// <summary>The snake_case keys a config type accepts.</summary>
    public static IEnumerable<string> KeysOf(Type type) => Properties(type).Select(p => p.Key);

    /// <summary>The properties a config type binds, each with its snake_case key.</summary>
    public static IEnumerable<KeyValuePair<string, PropertyInfo>> Properties(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.GetCustomAttribute<JsonIgnoreAttribute>() is null)
            .Select(p => KeyValuePair.Create(p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name), p));

    private static string At(string path, IReadOnlyDictionary<string, int>? lines) =>
        lines is not null && lines.TryGetValue(path, out var line) ? $"{path} (line {line})" : path;

    private static string Join(string prefix, string key) => prefix.Length == 0 ? key : $"{prefix}.{key}";

    private static void CheckObject(JsonObject tree, Type type, string path, List<string> problems, IReadOnlyDictionary<string, int>? lines, IReadOnlyList<string>? siblings = null)
    {
        var properties = Properties(type).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        foreach (var (key, value) in tree)
        {
            var keyPath = Join(path, key);
            if (!properties.TryGetValue(key, out var property))
            {
                var suggestion = Suggest(key, properties.Keys.Concat(siblings ?? []));
                problems.Add($"{At(keyPath, lines)}: unknown key{(suggestion is null ? "" : $"; did you mean '{suggestion}'?")}" +
                    $"{(suggestion is null ? $" ({(path.Length == 0 ? "top-level" : $"'{path}'")} keys: {string.Join(", ", properties.Keys.Order(StringComparer.Ordinal))})" : "")}");
                continue;
            }

            // NullabilityInfoContext caches without locks: one per check, never shared across threads.
            var nullable = new NullabilityInfoContext().Create(property).WriteState == NullabilityState.Nullable;
            CheckValue(value, property.PropertyType, nullable, keyPath, problems, lines);
        }
    }

    private static void CheckValue(JsonNode? node, Type type, bool nullable, string path, List<string> problems, IReadOnlyDictionary<string, int>? lines)
    {
        var underlying = Nullable.GetUnderlyingType(type);
        if (node is null)
        {
            if (!(nullable || underlying is not null))
                problems.Add($"{At(path, lines)}: null is not allowed here; remove the key to keep its default");
            return;
        }

        type = underlying ?? type;
        if (type == typeof(string))
        {
            if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.String)
                problems.Add($"{At(path, lines)}: {Show(node)} is not a string{(node is JsonValue ? " (quote it)" : "")}");
        }
        else if (type == typeof(int) || type == typeof(long))
        {
            if (!(node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue<long>(out var integer)))
                problems.Add($"{At(path, lines)}: {Show(node)} is not an integer");
            else if (type == typeof(int) && integer is < int.MinValue or > int.MaxValue)
                problems.Add($"{At(path, lines)}: {integer} is out of range for an integer setting");
        }
        else if (type == typeof(double))
        {
            if (!(node is JsonValue value && value.GetValueKind() == JsonValueKind.Number))
                problems.Add($"{At(path, lines)}: {Show(node)} is not a number");
        }
        else if (type == typeof(bool))
        {
            if (!(node is JsonValue value && value.GetValueKind() is JsonValueKind.True or JsonValueKind.False))
                problems.Add($"{At(path, lines)}: {Show(node)} is not true or false");
        }
        else if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>))
        {
            if (node is not JsonObject mapping)
            {
                problems.Add($"{At(path, lines)}: {Show(node)} is not a mapping of keys to values");
                return;
            }

            foreach (var (key, value) in mapping)
                CheckValue(value, type.GetGenericArguments()[1], nullable: false, Join(path, key), problems, lines);
        }
        else if (typeof(IList).IsAssignableFrom(type) && type.IsGenericType)
        {
            if (node is not JsonArray list)
            {
                problems.Add($"{At(path, lines)}: {Show(node)} is not a list");
                return;
            }

            for (var i = 0; i < list.Count; i++)
                CheckValue(list[i], type.GetGenericArguments()[0], nullable: false, $"{path}.{i}", problems, lines);
        }
        else if (node is JsonObject mapping)
        {
            CheckObject(mapping, type, path, problems, lines);
        }
        else
        {
            problems.Add($"{At(path, lines)}: {Show(node)} is not a mapping (expected keys: {string.Join(", ", KeysOf(type))})");
        }
    }

    private static string Show(JsonNode node)
    {
        var text = node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? $"'{v.GetValue<string>()}'" : node.ToJsonString();
        return text.Length > 60 ? text[..57] + "…" : text;
    }

    /// <summary>The known key closest to <paramref name="key"/> (edit distance ≤ 2, or a prefix), if any.</summary>
    public static string? Suggest(string key, IEnumerable<string> known) => known
        .Select(k => (Key: k, Distance: k.StartsWith(key, StringComparison.Ordinal) && key.Length >= 3 ? 1 : Distance(key, k)))
        .Where(c => c.Distance <= Math.Max(1, Math.Min(2, key.Length / 3)))
        .OrderBy(c => c.Distance).ThenBy(c => c.Key, StringComparer.Ordinal).Select(c => c.Key).FirstOrDefault();

    private static int Distance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        int[]? beforePrevious = null;
        for (var i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
                // A swap of two neighbours is one edit (optimal string alignment).
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    current[j] = Math.Min(current[j], beforePrevious![j - 2] + 1);
            }

            (beforePrevious, previous) = (previous, current);
        }

        return previous[b.Length];
    }

    /// <summary>A number's text for messages (invariant culture, shortest round-trip form).</summary>
    public static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
