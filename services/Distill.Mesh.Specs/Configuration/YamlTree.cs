using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Distill.Mesh.Specs.Configuration;

/// <summary>
/// Reads one YAML document into a JSON tree, treating the text as hostile: bounded size, nesting
/// depth and node count; anchors, aliases and merge keys refused (a 20-byte recursive alias or an
/// alias bomb cannot expand); one document; unique string keys. Scalars are typed as YAML 1.2's
/// core schema does (bool, int, float, null, string); quoted scalars stay strings. Built on
/// YamlDotNet's event parser, so nothing but this code decides what a node becomes.
/// </summary>
public static class YamlTree
{
    /// <summary>Largest spec or config text accepted.</summary>
    public const int MaxBytes = 1 << 20;

    /// <summary>Deepest nesting of mappings and sequences.</summary>
    public const int MaxDepth = 32;

    /// <summary>Most nodes (mappings, sequences, scalars) in one document.</summary>
    public const int MaxNodes = 100_000;

    /// <summary>Parses <paramref name="yaml"/>; an empty document is an empty mapping.</summary>
    /// <param name="yaml">The text.</param>
    /// <param name="source">What the text is, for messages (a file name, "spec_yaml").</param>
    /// <param name="lines">When given, receives the line of each key by dotted path (list items by index).</param>
    public static JsonObject ParseMapping(string yaml, string source, Dictionary<string, int>? lines = null)
    {
        if (yaml.Length > MaxBytes)
            throw new ConfigException($"{source}: {yaml.Length:N0} characters exceed the {MaxBytes:N0} a spec may have");
        var reader = new Reader(new Parser(new StringReader(yaml)), source, lines);
        try
        {
            return reader.Document();
        }
        catch (YamlException e)
        {
            throw new ConfigException($"{source}: invalid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.Message}", e);
        }
    }

    /// <summary>Parses one scalar or flow collection (an override's value).</summary>
    public static JsonNode? ParseValue(string text, string source)
    {
        var tree = ParseMapping($"v: {text}", source);
        return tree["v"]?.DeepClone();
    }

    private sealed class Reader(IParser parser, string source, Dictionary<string, int>? lines)
    {
        private int _nodes;

        private ConfigException Error(ParsingEvent at, string message) => new($"{source} line {at.Start.Line}: {message}");

        private ParsingEvent Next()
        {
            if (!parser.MoveNext())
                throw new ConfigException($"{source}: the YAML ends unexpectedly");
            return parser.Current!;
        }

        public JsonObject Document()
        {
            Expect<StreamStart>(Next());
            var first = Next();
            if (first is StreamEnd)
                return [];
            Expect<DocumentStart>(first);
            var root = Value(Next(), depth: 0, path: "");
            Expect<DocumentEnd>(Next());
            var end = Next();
            if (end is DocumentStart)
                throw Error(end, "a spec is one YAML document; found a second one (---)");
            Expect<StreamEnd>(end);
            return root switch
            {
                JsonObject mapping => mapping,
                null => [],
                _ => throw new ConfigException($"{source}: the top level must be a mapping of keys to values"),
            };
        }

        private static void Expect<T>(ParsingEvent e)
            where T : ParsingEvent
        {
            if (e is not T)
                throw new ConfigException($"unexpected YAML at line {e.Start.Line}: {e.GetType().Name}");
        }

        private JsonNode? Value(ParsingEvent e, int depth, string path)
        {
            if (++_nodes > MaxNodes)
                throw Error(e, $"more than {MaxNodes:N0} values");
            if (e is AnchorAlias alias)
                throw Error(e, $"aliases (*{alias.Value}) are not allowed in specs; write the value out");
            if (e is NodeEvent { Anchor.IsEmpty: false } anchored)
                throw Error(e, $"anchors (&{anchored.Anchor.Value}) are not allowed in specs; write the value out");
            if (e is NodeEvent { Tag.IsEmpty: false } tagged && tagged.Tag.Value is not ("tag:yaml.org,2002:str" or "!"))
                throw Error(e, $"YAML tags ({tagged.Tag.Value}) are not allowed in specs");
            switch (e)
            {
                case Scalar scalar:
                    return Typed(scalar);
                case MappingStart:
                    if (depth >= MaxDepth)
                        throw Error(e, $"nesting deeper than {MaxDepth} levels");
                    var mapping = new JsonObject();
                    for (var next = Next(); next is not MappingEnd; next = Next())
                    {
                        if (next is not Scalar key || key.Anchor is { IsEmpty: false })
                            throw Error(next, next is AnchorAlias ? "aliases are not allowed in specs" : "mapping keys must be plain strings");
                        if (key.Value == "<<" && key.Style == ScalarStyle.Plain)
                            throw Error(next, "merge keys (<<) are not allowed in specs; write the keys out");
                        if (mapping.ContainsKey(key.Value))
                            throw Error(next, $"key '{key.Value}' appears twice in the same mapping");
                        var keyPath = path.Length == 0 ? key.Value : $"{path}.{key.Value}";
                        lines?.TryAdd(keyPath, (int)key.Start.Line);
                        mapping[key.Value] = Value(Next(), depth + 1, keyPath);
                    }

                    return mapping;
                case SequenceStart:
                    if (depth >= MaxDepth)
                        throw Error(e, $"nesting deeper than {MaxDepth} levels");
                    var sequence = new JsonArray();
                    for (var next = Next(); next is not SequenceEnd; next = Next())
                    {
                        var itemPath = $"{path}.{sequence.Count}";
                        lines?.TryAdd(itemPath, (int)next.Start.Line);
                        sequence.Add(Value(next, depth + 1, itemPath));
                    }
                    return sequence;
                default:
                    throw Error(e, $"unexpected {e.GetType().Name}");
            }
        }

        private static JsonNode? Typed(Scalar scalar)
        {
            var text = scalar.Value;
            if (scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded || !scalar.Tag.IsEmpty)
                return JsonValue.Create(text);
            if (text is "" or "~" or "null" or "Null" or "NULL")
                return null;
            if (text is "true" or "True" or "TRUE")
                return JsonValue.Create(true);
            if (text is "false" or "False" or "FALSE")
                return JsonValue.Create(false);
            if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
                return JsonValue.Create(integer);
            if (text is ".inf" or ".Inf" or ".INF" or "+.inf" or "-.inf" or ".nan" or ".NaN" or ".NAN")
                return JsonValue.Create(text); // JSON has no NaN/Infinity: kept as text, refused where a number is due
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var real) && double.IsFinite(real))
                return JsonValue.Create(real);
            return JsonValue.Create(text);
        }
    }
}
