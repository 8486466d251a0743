namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// <c>x.name</c> and <c>x[key]</c> as Jinja2 resolves them: an attribute falls back to an item and
/// an item to an attribute, so <c>message.role</c> reads the dict key and <c>tool.items</c> is the
/// dict method; what is missing is <see cref="Undefined"/>, and only touching Undefined is an error.
/// </summary>
internal static class Access
{
    public static object? Attribute(object? target, string name)
    {
        switch (target)
        {
            case Undefined undefined:
                throw undefined.Fail();
            case OrderedDictionary<string, object?> dict:
                return (object?)Methods.Find(dict, name) ?? (dict.TryGetValue(name, out var value) ? value : Missing(target, name));
            case Namespace ns:
                return ns.Attributes.TryGetValue(name, out var attribute) ? attribute : Missing(target, name);
            case LoopContext loop:
                return loop.Attribute(name);
            default:
                return (object?)Methods.Find(target, name) ?? Missing(target, name);
        }
    }

    public static object? Item(object? target, object? key)
    {
        switch (target)
        {
            case Undefined undefined:
                throw undefined.Fail();
            case OrderedDictionary<string, object?> dict when key is string name:
                return dict.TryGetValue(name, out var value) ? value : (object?)Methods.Find(dict, name) ?? Missing(target, name);
            case IList<object?> list when key is long or bool:
                var index = PyValues.ToLong(key);
                if (index < 0)
                    index += list.Count;
                return index >= 0 && index < list.Count ? list[(int)index] : new Undefined($"{PyValues.TypeName(target)} index {key} out of range");
            case string s when key is long or bool:
                var points = PyStrings.CodePoints(s);
                var at = PyValues.ToLong(key);
                if (at < 0)
                    at += points.Count;
                return at >= 0 && at < points.Count ? points[(int)at] : new Undefined($"string index {key} out of range");
            default:
                return key is string attribute ? Attribute(target, attribute) : Missing(target, PyValues.Repr(key));
        }
    }

    /// <summary><c>x[start:stop:step]</c> of a string, list or tuple.</summary>
    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        long? Bound(object? v, string what) => v switch
        {
            null => null,
            long or bool => PyValues.ToLong(v),
            _ => throw new TemplateException($"slice {what} must be an integer or None, not {PyValues.TypeName(v)}"),
        };
        var (a, b, c) = (Bound(start, "start"), Bound(stop, "stop"), Bound(step, "step"));
        return target switch
        {
            Undefined undefined => throw undefined.Fail(),
            string s => PyStrings.Slice(s, a, b, c),
            List<object?> list => PyStrings.SliceIndices(list.Count, a, b, c).Select(i => list[i]).ToList(),
            object?[] tuple => PyStrings.SliceIndices(tuple.Length, a, b, c).Select(i => tuple[i]).ToArray(),
            _ => throw new TemplateException($"'{PyValues.TypeName(target)}' object is not subscriptable"),
        };
    }

    /// <summary>An attribute path such as "function.name" (as selectattr, map and sort take it), item lookups all the way.</summary>
    public static object? Path(object? target, string path)
    {
        foreach (var part in path.Split('.'))
            target = long.TryParse(part, out var index) ? Item(target, index) : Item(target, part);
        return target;
    }

    private static Undefined Missing(object? target, string name) =>
        new(target is null ? $"'None' has no attribute '{name}'" : $"'{PyValues.TypeName(target)} object' has no attribute '{name}'");
}
