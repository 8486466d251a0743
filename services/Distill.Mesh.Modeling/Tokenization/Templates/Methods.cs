using System.Text;

namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// The Python methods templates call on strings, dicts and lists (<c>content.split('&lt;/think&gt;')</c>,
/// <c>tool.items()</c>, ...). As in Jinja2's immutable sandbox, methods that change a list or dict
/// are refused when called.
/// </summary>
internal static class Methods
{
    private static readonly HashSet<string> Mutating =
        ["append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault", "popitem", "add", "discard"];

    /// <summary>The bound method <paramref name="name"/> of <paramref name="target"/>, or null when it has none.</summary>
    public static TemplateFunction? Find(object? target, string name)
    {
        Func<CallArguments, object?>? body = target switch
        {
            string s => StringMethod(s, name),
            OrderedDictionary<string, object?> d => DictMethod(d, name),
            IList<object?> list => ListMethod(list, name),
            _ => null,
        };
        if (body is null && target is IList<object?> or OrderedDictionary<string, object?> && Mutating.Contains(name))
            body = _ => throw new TemplateException($"access to attribute '{name}' of '{PyValues.TypeName(target)}' object is unsafe (templates cannot change values)");
        return body is null ? null : new TemplateFunction($"{PyValues.TypeName(target)}.{name}", body);
    }

    private static Func<CallArguments, object?>? StringMethod(string s, string name) => name switch
    {
        "strip" => a => PyStrings.Strip(s, OptionalText(a.Limit(name, "chars").Get(0, "chars"))),
        "lstrip" => a => PyStrings.StripStart(s, OptionalText(a.Limit(name, "chars").Get(0, "chars"))),
        "rstrip" => a => PyStrings.StripEnd(s, OptionalText(a.Limit(name, "chars").Get(0, "chars"))),
        "split" => a => PyStrings.Split(s, OptionalText(a.Limit(name, "sep", "maxsplit").Get(0, "sep")), Integer(a.Get(1, "maxsplit", -1L))),
        "rsplit" => a => PyStrings.RSplit(s, OptionalText(a.Limit(name, "sep", "maxsplit").Get(0, "sep")), Integer(a.Get(1, "maxsplit", -1L))),
        "splitlines" => a => PyStrings.SplitLines(s, PyValues.Truthy(a.Limit(name, "keepends").Get(0, "keepends", false))),
        "startswith" => a => Affix(s, a.Limit(name, "prefix"), (x, p) => x.StartsWith(p, StringComparison.Ordinal)),
        "endswith" => a => Affix(s, a.Limit(name, "suffix"), (x, p) => x.EndsWith(p, StringComparison.Ordinal)),
        "replace" => a => Replace(s, Text(a.Limit(name, "old", "new", "count").Get(0, "old")), Text(a.Get(1, "new")), Integer(a.Get(2, "count", -1L))),
        "upper" => _ => s.ToUpperInvariant(),
        "lower" => _ => s.ToLowerInvariant(),
        "title" => _ => PyStrings.Title(s),
        "capitalize" => _ => PyStrings.Capitalize(s),
        "find" => a => (long)s.IndexOf(Text(a.Limit(name, "sub").Get(0, "sub")), StringComparison.Ordinal),
        "rfind" => a => (long)s.LastIndexOf(Text(a.Limit(name, "sub").Get(0, "sub")), StringComparison.Ordinal),
        "count" => a => (long)Count(s, Text(a.Limit(name, "sub").Get(0, "sub"))),
        "join" => a => string.Join(s, PyValues.Iterate(a.Limit(name, "iterable").Get(0, "iterable")).Select(x => x as string
            ?? throw new TemplateException($"str.join(): expected str instance, {PyValues.TypeName(x)} found"))),
        "isdigit" => _ => s.Length > 0 && s.All(char.IsDigit),
        "isalpha" => _ => s.Length > 0 && s.All(char.IsLetter),
        "isalnum" => _ => s.Length > 0 && s.All(char.IsLetterOrDigit),
        "isspace" => _ => s.Length > 0 && s.All(PyStrings.IsSpace),
        "islower" => _ => s.Any(char.IsLetter) && !s.Any(char.IsUpper),
        "isupper" => _ => s.Any(char.IsLetter) && !s.Any(char.IsLower),
        _ => null,
    };

    private static Func<CallArguments, object?>? DictMethod(OrderedDictionary<string, object?> d, string name) => name switch
    {
        "items" => _ => d.Select(p => (object?)new object?[] { p.Key, p.Value }).ToList(),
        "keys" => _ => d.Keys.Cast<object?>().ToList(),
        "values" => _ => d.Values.ToList(),
        "get" => a => a.Limit(name, "key", "default").Get(0, "key") is string key && d.TryGetValue(key, out var v) ? v : a.Get(1, "default"),
        _ => null,
    };

    private static Func<CallArguments, object?>? ListMethod(IList<object?> list, string name) => name switch
    {
        "index" => a =>
        {
            var item = a.Limit(name, "value").Get(0, "value");
            for (var i = 0; i < list.Count; i++)
            {
                if (PyValues.Equal(list[i], item))
                    return (long)i;
            }

            throw new TemplateException($"{PyValues.Repr(item)} is not in list");
        },
        "count" => a => (long)list.Count(x => PyValues.Equal(x, a.Limit(name, "value").Get(0, "value"))),
        _ => null,
    };

    private static bool Affix(string s, CallArguments a, Func<string, string, bool> test) => a.Get(0, "") switch
    {
        string p => test(s, p),
        object?[] options => options.Any(o => test(s, Text(o))),
        var other => throw new TemplateException($"startswith/endswith first arg must be str or a tuple of str, not {PyValues.TypeName(other)}"),
    };

    private static string Replace(string s, string old, string replacement, long count)
    {
        if (count < 0)
            return old.Length == 0 ? string.Concat(PyStrings.CodePoints(s).Select(p => replacement + p)) + replacement : s.Replace(old, replacement, StringComparison.Ordinal);
        var output = new StringBuilder();
        var from = 0;
        for (var n = 0; n < count; n++)
        {
            var at = s.IndexOf(old, from, StringComparison.Ordinal);
            if (at < 0 || old.Length == 0)
                break;
            output.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
        }

        return output.Append(s, from, s.Length - from).ToString();
    }

    private static int Count(string s, string sub)
    {
        if (sub.Length == 0)
            return PyStrings.Length(s) + 1;
        var n = 0;
        for (var at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal))
            n++;
        return n;
    }

    internal static string Text(object? value) =>
        value as string ?? throw new TemplateException($"expected a string argument, got {PyValues.TypeName(value)}");

    internal static string? OptionalText(object? value) => value is null or Undefined ? null : Text(value);

    internal static long Integer(object? value) => value is long or bool ? PyValues.ToLong(value) : throw new TemplateException($"expected an integer argument, got {PyValues.TypeName(value)}");
}
