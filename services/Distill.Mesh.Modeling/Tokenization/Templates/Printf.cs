using System.Globalization;
using System.Text;

namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>Python's printf-style <c>"..." % args</c> (and the <c>format</c> filter) for the common conversions.</summary>
internal static class Printf
{
    public static string Format(string format, object? args)
    {
        var values = args as object?[] ?? [args];
        var next = 0;
        var output = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%')
            {
                output.Append(format[i]);
                continue;
            }

            if (++i >= format.Length)
                throw new TemplateException("incomplete format");
            object? value = null;
            var isNamed = format[i] == '(';
            if (isNamed)
            {
                var close = format.IndexOf(')', i);
                if (close < 0 || args is not OrderedDictionary<string, object?> named)
                    throw new TemplateException("format requires a mapping");
                value = Access.Item(named, format[(i + 1)..close]);
                i = close + 1;
            }

            var spec = new StringBuilder();
            while (i < format.Length && "-+ 0#.123456789".Contains(format[i]))
                spec.Append(format[i++]);
            if (i >= format.Length)
                throw new TemplateException("incomplete format");
            var conversion = format[i];
            if (conversion == '%')
            {
                output.Append('%');
                continue;
            }

            if (!isNamed)
            {
                if (next >= values.Length)
                    throw new TemplateException("not enough arguments for format string");
                value = values[next++];
            }

            output.Append(Convert(value, conversion, spec.ToString()));
        }

        if (args is not OrderedDictionary<string, object?> && next < values.Length)
            throw new TemplateException("not all arguments converted during string formatting");
        return output.ToString();
    }

    private static string Convert(object? value, char conversion, string spec)
    {
        var left = spec.Contains('-');
        var zero = spec.StartsWith('0') || spec.Contains("-0", StringComparison.Ordinal);
        var parts = spec.TrimStart('-', '+', ' ', '0', '#').Split('.');
        var width = parts[0].Length > 0 ? int.Parse(parts[0], CultureInfo.InvariantCulture) : 0;
        int? precision = parts.Length > 1 ? parts[1].Length > 0 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : 0 : null;
        var c = CultureInfo.InvariantCulture;
        var text = conversion switch
        {
            's' => PyValues.ToStr(value) is var s && precision is { } p && p < s.Length ? s[..p] : PyValues.ToStr(value),
            'r' => PyValues.Repr(value),
            'd' or 'i' or 'u' => ((long)Math.Truncate(PyValues.ToDouble(value))).ToString(c),
            'f' or 'F' => PyValues.ToDouble(value).ToString("F" + (precision ?? 6), c),
            'e' => PyValues.ToDouble(value).ToString((precision ?? 6) == 0 ? "0e+00" : "0." + new string('0', precision ?? 6) + "e+00", c),
            'x' => ((long)PyValues.ToDouble(value)).ToString("x", c),
            'X' => ((long)PyValues.ToDouble(value)).ToString("X", c),
            _ => throw new TemplateException($"unsupported format character '{conversion}'"),
        };
        if (spec.Contains('+') && conversion is not ('s' or 'r') && !text.StartsWith('-'))
            text = "+" + text;
        if (text.Length >= width)
            return text;
        return left ? text.PadRight(width) : zero && conversion is not ('s' or 'r') ? text.PadLeft(width, '0') : text.PadLeft(width);
    }
}
