using System.Collections;
using System.Globalization;
using System.Text;

namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// The value model and Python's rules on it. Values are: null (None), <see cref="Undefined"/>, bool,
/// long (int), double (float), string, <c>List&lt;object?&gt;</c> (list), <c>object?[]</c> (tuple),
/// <c>OrderedDictionary&lt;string, object?&gt;</c> (dict, insertion-ordered), <see cref="Namespace"/>,
/// <see cref="LoopContext"/> and <see cref="TemplateFunction"/>.
/// </summary>
internal static class PyValues
{
    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        Undefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        object?[] => "tuple",
        OrderedDictionary<string, object?> => "dict",
        Namespace => "Namespace",
        LoopContext => "LoopContext",
        TemplateFunction => "function",
        _ => value.GetType().Name,
    };

    public static bool Truthy(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        long n => n != 0,
        double d => d != 0,
        string s => s.Length > 0,
        ICollection c => c.Count > 0,
        _ => true,
    };

    public static bool IsNumber(object? value) => value is long or double or bool;

    public static double ToDouble(object? value) => value switch
    {
        long n => n,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new TemplateException($"expected a number, got {TypeName(value)}"),
    };

    /// <summary>Python <c>==</c>: numbers across int/float/bool, deep equality of lists, tuples and dicts.</summary>
    public static bool Equal(object? a, object? b)
    {
        if (a is Undefined || b is Undefined)
            return a is Undefined && b is Undefined;
        if (a is null || b is null)
            return a is null && b is null;
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a) == ToDouble(b) : ToLong(a) == ToLong(b);
        switch (a)
        {
            case string s:
                return b is string t && s == t;
            case List<object?> list:
                return b is List<object?> otherList && SequenceEqual(list, otherList);
            case object?[] tuple:
                return b is object?[] otherTuple && SequenceEqual(tuple, otherTuple);
            case OrderedDictionary<string, object?> dict:
                return b is OrderedDictionary<string, object?> other && dict.Count == other.Count
                    && dict.All(p => other.TryGetValue(p.Key, out var v) && Equal(p.Value, v));
            default:
                return ReferenceEquals(a, b);
        }
    }

    private static bool SequenceEqual(IList<object?> x, IList<object?> y)
    {
        if (x.Count != y.Count)
            return false;
        for (var i = 0; i < x.Count; i++)
        {
            if (!Equal(x[i], y[i]))
                return false;
        }

        return true;
    }

    public static long ToLong(object? value) => value switch
    {
        long n => n,
        bool b => b ? 1 : 0,
        _ => throw new TemplateException($"expected an integer, got {TypeName(value)}"),
    };

    /// <summary>Python ordering (<c>&lt;</c> and friends): numbers, strings by code point, sequences lexicographically.</summary>
    public static int Compare(object? a, object? b, string op)
    {
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a).CompareTo(ToDouble(b)) : ToLong(a).CompareTo(ToLong(b));
        if (a is string s && b is string t)
            return CompareCodePoints(s, t);
        if ((a is List<object?> && b is List<object?>) || (a is object?[] && b is object?[]))
        {
            var x = (IList<object?>)a;
            var y = (IList<object?>)b!;
            for (var i = 0; i < Math.Min(x.Count, y.Count); i++)
            {
                if (!Equal(x[i], y[i]))
                    return Compare(x[i], y[i], op);
            }

            return x.Count.CompareTo(y.Count);
        }

        throw new TemplateException($"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
    }

    private static int CompareCodePoints(string s, string t)
    {
        if (!PyStrings.HasSurrogates(s) && !PyStrings.HasSurrogates(t))
            return Math.Sign(string.CompareOrdinal(s, t));
        var x = s.EnumerateRunes().GetEnumerator();
        var y = t.EnumerateRunes().GetEnumerator();
        while (true)
        {
            var more = x.MoveNext();
            if (more != y.MoveNext())
                return more ? 1 : -1;
            if (!more)
                return 0;
            if (x.Current.Value != y.Current.Value)
                return x.Current.Value.CompareTo(y.Current.Value);
        }
    }

    /// <summary>Python <c>len()</c>; Undefined has length 0 as in Jinja2.</summary>
    public static int Length(object? value) => value switch
    {
        string s => PyStrings.Length(s),
        ICollection c => c.Count,
        Undefined => 0,
        _ => throw new TemplateException($"object of type '{TypeName(value)}' has no len()"),
    };

    /// <summary>What a for loop over the value visits: items of a list, keys of a dict, characters of a string.</summary>
    public static List<object?> Iterate(object? value) => value switch
    {
        List<object?> list => [.. list],
        object?[] tuple => [.. tuple],
        OrderedDictionary<string, object?> dict => dict.Keys.Cast<object?>().ToList(),
        string s => PyStrings.CodePoints(s).Cast<object?>().ToList(),
        Undefined => [],
        Namespace ns => ns.Attributes.Keys.Cast<object?>().ToList(),
        _ => throw new TemplateException($"'{TypeName(value)}' object is not iterable"),
    };

    public static bool IsIterable(object? value) => value is string or List<object?> or object?[] or OrderedDictionary<string, object?> or Undefined;

    /// <summary>Python <c>x in container</c>.</summary>
    public static bool Contains(object? container, object? item) => container switch
    {
        string s => item is string t ? s.Contains(t, StringComparison.Ordinal) : throw new TemplateException($"'in <string>' requires string as left operand, not {TypeName(item)}"),
        OrderedDictionary<string, object?> d => item is string key && d.ContainsKey(key),
        Undefined => false,
        List<object?> or object?[] => ((IList<object?>)container).Any(x => Equal(x, item)),
        _ => throw new TemplateException($"argument of type '{TypeName(container)}' is not iterable"),
    };

    /// <summary>Python <c>str()</c> (what <c>{{ x }}</c> prints); Undefined prints as "".</summary>
    public static string ToStr(object? value) => value switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(value),
    };

    /// <summary>Python <c>repr()</c>.</summary>
    public static string Repr(object? value)
    {
        switch (value)
        {
            case null: return "None";
            case Undefined: return "";
            case bool b: return b ? "True" : "False";
            case long n: return n.ToString(CultureInfo.InvariantCulture);
            case double d: return FloatRepr(d);
            case string s: return PyStrings.Repr(s);
            case List<object?> list: return "[" + string.Join(", ", list.Select(Repr)) + "]";
            case object?[] tuple: return tuple.Length == 1 ? $"({Repr(tuple[0])},)" : "(" + string.Join(", ", tuple.Select(Repr)) + ")";
            case OrderedDictionary<string, object?> dict:
                return "{" + string.Join(", ", dict.Select(p => $"{PyStrings.Repr(p.Key)}: {Repr(p.Value)}")) + "}";
            case Namespace ns:
                return "<Namespace " + Repr(new OrderedDictionary<string, object?>(ns.Attributes)) + ">";
            case TemplateFunction f: return $"<function {f.Name}>";
            default: return value.ToString() ?? "";
        }
    }

    /// <summary>Python's <c>float.__repr__</c>: the shortest round-trip digits, scientific below 1e-4 and from 1e16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d))
            return "nan";
        if (double.IsInfinity(d))
            return d > 0 ? "inf" : "-inf";
        if (d == 0)
            return double.IsNegative(d) ? "-0.0" : "0.0";
        var text = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        var exponent = 0;
        var e = text.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(text.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            text = text[..e];
        }

        var point = text.IndexOf('.');
        var digits = point < 0 ? text : text.Remove(point, 1);
        var decimalPoint = (point < 0 ? text.Length : point) + exponent;
        var leading = digits.Length - digits.TrimStart('0').Length;
        digits = digits.Trim('0');
        decimalPoint -= leading;

        var result = new StringBuilder(d < 0 ? "-" : "");
        if (decimalPoint is > -4 and <= 16)
        {
            if (decimalPoint <= 0)
                result.Append("0.").Append('0', -decimalPoint).Append(digits);
            else if (decimalPoint >= digits.Length)
                result.Append(digits).Append('0', decimalPoint - digits.Length).Append(".0");
            else
                result.Append(digits.AsSpan(0, decimalPoint)).Append('.').Append(digits.AsSpan(decimalPoint));
        }
        else
        {
            result.Append(digits[0]);
            if (digits.Length > 1)
                result.Append('.').Append(digits.AsSpan(1));
            var power = decimalPoint - 1;
            result.Append(power < 0 ? "e-" : "e+").Append(Math.Abs(power).ToString("00", CultureInfo.InvariantCulture));
        }

        return result.ToString();
    }
}
