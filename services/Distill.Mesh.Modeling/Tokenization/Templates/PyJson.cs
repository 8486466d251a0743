using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// Values to and from JSON: <see cref="FromJson"/> turns request JSON into template values
/// (integers stay int, <c>3.0</c> stays float); <see cref="Dumps"/> is Python's <c>json.dumps</c>,
/// which transformers' <c>tojson</c> filter calls (no HTML escaping, keys in insertion order).
/// </summary>
internal static class PyJson
{
    public static object? FromJson(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return null;
            case JsonObject obj:
                var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (key, value) in obj)
                    dict[key] = FromJson(value);
                return dict;
            case JsonArray array:
                return array.Select(FromJson).ToList();
            default:
                var scalar = node.AsValue();
                return node.GetValueKind() switch
                {
                    JsonValueKind.String => scalar.GetValue<string>(),
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    JsonValueKind.Null => null,
                    JsonValueKind.Number when scalar.TryGetValue<JsonElement>(out var element) => Number(element.GetRawText()),
                    JsonValueKind.Number when scalar.TryGetValue<long>(out var n) => n,
                    JsonValueKind.Number when scalar.TryGetValue<int>(out var i) => (long)i,
                    JsonValueKind.Number => scalar.GetValue<double>(),
                    _ => throw new TemplateException($"unsupported JSON value {node.ToJsonString()}"),
                };
        }
    }

    private static object Number(string raw) =>
        raw.AsSpan().IndexOfAny('.', 'e', 'E') < 0 && long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
            ? (object)n
            : double.Parse(raw, CultureInfo.InvariantCulture);

    /// <summary>Python <c>json.dumps(value, ensure_ascii, indent, separators, sort_keys)</c>.</summary>
    public static string Dumps(object? value, bool ensureAscii, object? indent, object? separators, bool sortKeys)
    {
        var indentText = indent switch
        {
            null => null,
            long n => new string(' ', (int)Math.Clamp(n, 0, 64)),
            string s => s,
            _ => throw new TemplateException($"tojson: indent must be an int or a string, not {PyValues.TypeName(indent)}"),
        };
        var (itemSeparator, keySeparator) = separators switch
        {
            null => (indentText is null ? ", " : ",", ": "),
            IList<object?> { Count: 2 } pair when pair[0] is string a && pair[1] is string b => (a, b),
            _ => throw new TemplateException("tojson: separators must be a pair of strings"),
        };
        var output = new StringBuilder();
        new Writer(output, ensureAscii, indentText, itemSeparator, keySeparator, sortKeys).Write(value, 0);
        return output.ToString();
    }

    private sealed record Writer(StringBuilder Output, bool EnsureAscii, string? Indent, string ItemSeparator, string KeySeparator, bool SortKeys)
    {
        public void Write(object? value, int level)
        {
            if (level > 500)
                throw new TemplateException("tojson: value nested too deeply");
            switch (value)
            {
                case null: Output.Append("null"); break;
                case bool b: Output.Append(b ? "true" : "false"); break;
                case long n: Output.Append(n.ToString(CultureInfo.InvariantCulture)); break;
                case double d: Output.Append(double.IsFinite(d) ? PyValues.FloatRepr(d) : double.IsNaN(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity"); break;
                case string s: WriteString(s); break;
                case IList<object?> list: WriteList(list, level); break;
                case OrderedDictionary<string, object?> dict: WriteDict(dict, level); break;
                default: throw new TemplateException($"tojson: Object of type {PyValues.TypeName(value)} is not JSON serializable");
            }
        }

        private void WriteList(IList<object?> list, int level)
        {
            if (list.Count == 0)
            {
                Output.Append("[]");
                return;
            }

            Output.Append('[');
            for (var i = 0; i < list.Count; i++)
            {
                Output.Append(i == 0 ? "" : ItemSeparator);
                NewLine(level + 1);
                Write(list[i], level + 1);
            }

            NewLine(level);
            Output.Append(']');
        }

        private void WriteDict(OrderedDictionary<string, object?> dict, int level)
        {
            if (dict.Count == 0)
            {
                Output.Append("{}");
                return;
            }

            IEnumerable<KeyValuePair<string, object?>> pairs = SortKeys ? dict.OrderBy(p => p.Key, StringComparer.Ordinal) : dict;
            Output.Append('{');
            var first = true;
            foreach (var (key, item) in pairs)
            {
                Output.Append(first ? "" : ItemSeparator);
                first = false;
                NewLine(level + 1);
                WriteString(key);
                Output.Append(KeySeparator);
                Write(item, level + 1);
            }

            NewLine(level);
            Output.Append('}');
        }

        private void NewLine(int level)
        {
            if (Indent is null)
                return;
            Output.Append('\n');
            for (var i = 0; i < level; i++)
                Output.Append(Indent);
        }

        private void WriteString(string s)
        {
            Output.Append('"');
            foreach (var c in s)
            {
                switch (c)
                {
                    case '"': Output.Append("\\\""); break;
                    case '\\': Output.Append("\\\\"); break;
                    case '\n': Output.Append("\\n"); break;
                    case '\r': Output.Append("\\r"); break;
                    case '\t': Output.Append("\\t"); break;
                    case '\b': Output.Append("\\b"); break;
                    case '\f': Output.Append("\\f"); break;
                    default:
                        if (c < 0x20 || (EnsureAscii && c > 0x7e))
                            Output.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else
                            Output.Append(c);
                        break;
                }
            }

            Output.Append('"');
        }
    }
}
