using System.Globalization;
using System.Text;

namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// Jinja2's built-in filters that chat templates use, with transformers' <c>tojson</c>
/// (<c>json.dumps</c> with ensure_ascii=False) in place of Jinja2's HTML-safe one.
/// </summary>
internal static class Filters
{
    public static object? Apply(string name, object? value, CallArguments a, int maxChars)
    {
        switch (name)
        {
            case "trim": return PyStrings.Strip(PyValues.ToStr(value), Methods.OptionalText(a.Limit(name, "chars").Get(0, "chars")));
            case "length" or "count": return (long)PyValues.Length(value);
            case "string": return PyValues.ToStr(value);
            case "upper": return PyValues.ToStr(value).ToUpperInvariant();
            case "lower": return PyValues.ToStr(value).ToLowerInvariant();
            case "title": return PyStrings.Title(PyValues.ToStr(value));
            case "capitalize": return PyStrings.Capitalize(PyValues.ToStr(value));
            case "safe": return value;
            case "escape" or "e" or "forceescape": return Escape(PyValues.ToStr(value));
            case "list": return PyValues.Iterate(value);
            case "first": return PyValues.Iterate(value) is { Count: > 0 } f ? f[0] : new Undefined("first of an empty sequence");
            case "last": return PyValues.Iterate(value) is { Count: > 0 } l ? l[^1] : new Undefined("last of an empty sequence");
            case "reverse": return value is string s ? string.Concat(Enumerable.Reverse(PyStrings.CodePoints(s))) : Enumerable.Reverse(PyValues.Iterate(value)).ToList();
            case "items": return Items(value);
            case "dictsort": return DictSort(value, a.Limit(name, "case_sensitive", "by", "reverse"));
            case "join": return Join(value, a.Limit(name, "d", "attribute"), maxChars);
            case "default" or "d":
                a.Limit(name, "default_value", "boolean");
                return value is Undefined || (PyValues.Truthy(a.Get(1, "boolean", false)) && !PyValues.Truthy(value)) ? a.Get(0, "default_value", "") : value;
            case "replace":
                a.Limit(name, "old", "new", "count");
                var replace = Methods.Find(PyValues.ToStr(value), "replace")!;
                return replace.Invoke(new CallArguments([a.Get(0, "old"), a.Get(1, "new"), a.Get(2, "count", -1L)], []));
            case "tojson":
                a.Limit(name, "ensure_ascii", "indent", "separators", "sort_keys");
                return PyJson.Dumps(value, PyValues.Truthy(a.Get(0, "ensure_ascii", false)), a.Get(1, "indent"), a.Get(2, "separators"), PyValues.Truthy(a.Get(3, "sort_keys", false)));
            case "int": return ToInt(value, a.Limit(name, "default", "base"));
            case "float": return ToFloat(value, a.Limit(name, "default").Get(0, "default", 0.0));
            case "abs": return value is long n ? (object)Math.Abs(n) : Math.Abs(PyValues.ToDouble(value));
            case "round": return Round(value, a.Limit(name, "precision", "method"));
            case "indent": return Indent(PyValues.ToStr(value), a.Limit(name, "width", "first", "blank"));
            case "center": return Center(PyValues.ToStr(value), (int)Methods.Integer(a.Limit(name, "width").Get(0, "width", 80L)), maxChars);
            case "wordcount": return (long)PyStrings.Split(PyValues.ToStr(value), null, -1).Count;
            case "unique": return Unique(value, a.Limit(name, "case_sensitive", "attribute"));
            case "sort": return Sort(value, a.Limit(name, "reverse", "case_sensitive", "attribute"));
            case "min" or "max": return MinMax(value, a.Limit(name, "case_sensitive", "attribute"), name == "max");
            case "sum": return Sum(value, a.Limit(name, "attribute", "start"));
            case "attr": return Access.Attribute(value, Methods.Text(a.Limit(name, "name").Get(0, "name")));
            case "map": return Map(value, a, maxChars);
            case "select" or "reject": return Select(value, a, name == "select", attribute: false);
            case "selectattr" or "rejectattr": return Select(value, a, name == "selectattr", attribute: true);
            case "batch": return Batch(value, a.Limit(name, "linecount", "fill_with"));
            case "format": return Printf.Format(PyValues.ToStr(value), a.Positional.Count == 1 ? a.Positional[0] : a.Positional.ToArray());
            default: throw new TemplateException($"no filter named '{name}'");
        }
    }

    private static string Escape(string s) =>
        s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal)
            .Replace("\"", "&#34;", StringComparison.Ordinal).Replace("'", "&#39;", StringComparison.Ordinal);

    private static List<object?> Items(object? value) => value switch
    {
        Undefined => [],
        OrderedDictionary<string, object?> d => d.Select(p => (object?)new object?[] { p.Key, p.Value }).ToList(),
        _ => throw new TemplateException($"items: can only get item pairs from a mapping, not {PyValues.TypeName(value)}"),
    };

    private static List<object?> DictSort(object? value, CallArguments a)
    {
        var byValue = a.Get(1, "by", "key") is "value";
        var caseSensitive = PyValues.Truthy(a.Get(0, "case_sensitive", false));
        var pairs = Items(value);
        pairs.Sort((x, y) => CompareKeys(((object?[])x!)[byValue ? 1 : 0], ((object?[])y!)[byValue ? 1 : 0], caseSensitive));
        if (PyValues.Truthy(a.Get(2, "reverse", false)))
            pairs.Reverse();
        return pairs;
    }

    private static int CompareKeys(object? x, object? y, bool caseSensitive) =>
        !caseSensitive && x is string s && y is string t ? PyValues.Compare(s.ToLowerInvariant(), t.ToLowerInvariant(), "<") : PyValues.Compare(x, y, "<");

    private static string Join(object? value, CallArguments a, int maxChars)
    {
        var items = PyValues.Iterate(value);
        if (a.Get(1, "attribute") is string attribute)
            items = items.Select(x => Access.Path(x, attribute)).ToList();
        var separator = PyValues.ToStr(a.Get(0, "d", ""));
        var output = new StringBuilder();
        for (var i = 0; i < items.Count; i++)
        {
            output.Append(i == 0 ? "" : separator).Append(PyValues.ToStr(items[i]));
            if (output.Length > maxChars)
                throw new TemplateException($"join: the result exceeds {maxChars} characters");
        }

        return output.ToString();
    }

    private static object? ToInt(object? value, CallArguments a)
    {
        var fallback = a.Get(0, "default", 0L);
        switch (value)
        {
            case long or bool: return PyValues.ToLong(value);
            case double d: return double.IsFinite(d) ? (long)Math.Truncate(d) : fallback;
            case string s:
                var text = PyStrings.Strip(s).Replace("_", "", StringComparison.Ordinal);
                var numberBase = (int)Methods.Integer(a.Get(1, "base", 10L));
                if (numberBase == 10 && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
                    return n;
                if (numberBase != 10)
                {
                    try
                    {
                        return Convert.ToInt64(text, numberBase);
                    }
                    catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
                    {
                        return fallback;
                    }
                }

                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) && double.IsFinite(f) ? (long)Math.Truncate(f) : fallback;
            default: return fallback;
        }
    }

    private static object? ToFloat(object? value, object? fallback) => value switch
    {
        long or bool or double => PyValues.ToDouble(value),
        string s when double.TryParse(PyStrings.Strip(s), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => fallback,
    };

    private static double Round(object? value, CallArguments a)
    {
        var precision = (int)Math.Clamp(Methods.Integer(a.Get(0, "precision", 0L)), 0, 15);
        var x = PyValues.ToDouble(value);
        return a.Get(1, "method", "common") switch
        {
            "common" => Math.Round(x, precision, MidpointRounding.ToEven),
            "ceil" => Math.Ceiling(x * Math.Pow(10, precision)) / Math.Pow(10, precision),
            "floor" => Math.Floor(x * Math.Pow(10, precision)) / Math.Pow(10, precision),
            var m => throw new TemplateException($"round: method must be common, ceil or floor, not {PyValues.Repr(m)}"),
        };
    }

    // Jinja2's indent: later lines get the indentation (the first too with first=true), blank lines only with blank=true.
    private static string Indent(string s, CallArguments a)
    {
        var indent = a.Get(0, "width", 4L) is string w ? w : new string(' ', (int)Math.Clamp(Methods.Integer(a.Get(0, "width", 4L)), 0, 256));
        var lines = PyStrings.SplitLines(s + "\n", keepEnds: false).Cast<string>().ToList();
        string result;
        if (PyValues.Truthy(a.Get(2, "blank", false)))
            result = string.Join("\n" + indent, lines);
        else
            result = lines[0] + (lines.Count > 1 ? "\n" + string.Join("\n", lines.Skip(1).Select(l => l.Length > 0 ? indent + l : l)) : "");
        return PyValues.Truthy(a.Get(1, "first", false)) ? indent + result : result;
    }

    private static string Center(string s, int width, int maxChars)
    {
        width = Math.Min(width, maxChars);
        var length = PyStrings.Length(s);
        if (width <= length)
            return s;
        var total = width - length;
        var left = total / 2 + (total & width & 1);
        return new string(' ', left) + s + new string(' ', total - left);
    }

    private static List<object?> Unique(object? value, CallArguments a)
    {
        var caseSensitive = PyValues.Truthy(a.Get(0, "case_sensitive", false));
        var attribute = a.Get(1, "attribute") as string;
        var seen = new List<object?>();
        var output = new List<object?>();
        foreach (var item in PyValues.Iterate(value))
        {
            var key = attribute is null ? item : Access.Path(item, attribute);
            if (!caseSensitive && key is string s)
                key = s.ToLowerInvariant();
            if (seen.Any(k => PyValues.Equal(k, key)))
                continue;
            seen.Add(key);
            output.Add(item);
        }

        return output;
    }

    private static List<object?> Sort(object? value, CallArguments a)
    {
        var caseSensitive = PyValues.Truthy(a.Get(1, "case_sensitive", false));
        var attribute = a.Get(2, "attribute") as string;
        var items = PyValues.Iterate(value);
        object? Key(object? x) => attribute is null ? x : Access.Path(x, attribute);
        var sorted = items.Select((x, i) => (x, i)).ToList();
        sorted.Sort((p, q) => CompareKeys(Key(p.x), Key(q.x), caseSensitive) is var c && c != 0 ? c : p.i.CompareTo(q.i));
        var result = sorted.Select(p => p.x).ToList();
        if (PyValues.Truthy(a.Get(0, "reverse", false)))
            result.Reverse();
        return result;
    }

    private static object? MinMax(object? value, CallArguments a, bool max)
    {
        var items = PyValues.Iterate(value);
        if (items.Count == 0)
            return new Undefined($"{(max ? "max" : "min")} of an empty sequence");
        var caseSensitive = PyValues.Truthy(a.Get(0, "case_sensitive", false));
        var attribute = a.Get(1, "attribute") as string;
        object? Key(object? x) => attribute is null ? x : Access.Path(x, attribute);
        var best = items[0];
        foreach (var item in items.Skip(1))
        {
            var c = CompareKeys(Key(item), Key(best), caseSensitive);
            if (max ? c > 0 : c < 0)
                best = item;
        }

        return best;
    }

    private static object? Sum(object? value, CallArguments a)
    {
        var attribute = a.Get(0, "attribute") as string;
        object? total = a.Get(1, "start", 0L);
        foreach (var item in PyValues.Iterate(value))
        {
            var x = attribute is null ? item : Access.Path(item, attribute);
            total = total is long t && x is long n ? (object)checked(t + n) : PyValues.ToDouble(total) + PyValues.ToDouble(x);
        }

        return total;
    }

    private static List<object?> Map(object? value, CallArguments a, int maxChars)
    {
        var items = PyValues.Iterate(value);
        if (a.Positional.Count == 0)
        {
            var attribute = Methods.Text(a.Get(-1, "attribute"));
            var hasDefault = a.Has(-1, "default");
            return items.Select(x => Access.Path(x, attribute) is var v && v is Undefined && hasDefault ? a.Get(-1, "default") : v).ToList();
        }

        var filter = Methods.Text(a.Positional[0]);
        var rest = new CallArguments(a.Positional.Skip(1).ToList(), a.Keywords);
        return items.Select(x => Apply(filter, x, rest, maxChars)).ToList();
    }

    private static List<object?> Select(object? value, CallArguments a, bool keep, bool attribute)
    {
        var items = PyValues.Iterate(value);
        var skip = attribute ? 1 : 0;
        var path = attribute ? Methods.Text(a.Positional.Count > 0 ? a.Positional[0] : null) : null;
        var test = a.Positional.Count > skip ? Methods.Text(a.Positional[skip]) : null;
        var testArgs = new CallArguments(a.Positional.Skip(skip + 1).ToList(), a.Keywords);
        return items.Where(x =>
        {
            var subject = path is null ? x : Access.Path(x, path);
            return (test is null ? PyValues.Truthy(subject) : IsTests.Apply(test, subject, testArgs)) == keep;
        }).ToList();
    }

    private static List<object?> Batch(object? value, CallArguments a)
    {
        var size = (int)Methods.Integer(a.Get(0, "linecount"));
        if (size <= 0)
            throw new TemplateException("batch: linecount must be positive");
        var fill = a.Has(1, "fill_with");
        var batches = PyValues.Iterate(value).Chunk(size).Select(c => (object?)c.ToList()).ToList();
        if (fill && batches.Count > 0 && batches[^1] is List<object?> last)
        {
            while (last.Count < size)
                last.Add(a.Get(1, "fill_with"));
        }

        return batches;
    }
}
