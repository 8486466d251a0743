namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>Python's binary operators: <c>+ - * / // % **</c> and Jinja's <c>~</c> (string concatenation).</summary>
internal static class Arithmetic
{
    public static object? Binary(string op, object? a, object? b, int maxChars)
    {
        if (op == "~")
            return Bounded(PyValues.ToStr(a) + PyValues.ToStr(b), maxChars);
        if (a is Undefined u)
            throw u.Fail();
        if (b is Undefined v)
            throw v.Fail();
        if (PyValues.IsNumber(a) && PyValues.IsNumber(b))
            return Numeric(op, a!, b!);
        switch (op)
        {
            case "+" when a is string s && b is string t:
                return Bounded(s + t, maxChars);
            case "+" when a is List<object?> x && b is List<object?> y:
                return Bounded(x.Concat(y).ToList(), maxChars);
            case "+" when a is object?[] x && b is object?[] y:
                return Bounded(x.Concat(y).ToArray(), maxChars);
            case "*" when (a is string || b is string) && (a is long or bool || b is long or bool):
                var (text, count) = a is string s1 ? (s1, PyValues.ToLong(b)) : ((string)b!, PyValues.ToLong(a));
                if (count > 0 && (long)text.Length * count > maxChars)
                    throw new TemplateLimitException($"string repetition exceeds {maxChars} characters");
                return count <= 0 ? "" : string.Concat(Enumerable.Repeat(text, (int)count));
            case "*" when (a is List<object?> || b is List<object?>) && (a is long or bool || b is long or bool):
                var (list, times) = a is List<object?> l ? (l, PyValues.ToLong(b)) : ((List<object?>)b!, PyValues.ToLong(a));
                if (times > 0 && (long)list.Count * times > maxChars)
                    throw new TemplateLimitException($"list repetition exceeds {maxChars} items");
                return times <= 0 ? new List<object?>() : Enumerable.Repeat(list, (int)times).SelectMany(x => x).ToList();
            case "%" when a is string format:
                return Bounded(Printf.Format(format, b), maxChars);
        }

        throw new TemplateException($"unsupported operand type(s) for {op}: '{PyValues.TypeName(a)}' and '{PyValues.TypeName(b)}'");
    }

    private static object Numeric(string op, object a, object b)
    {
        if (a is double || b is double || op == "/")
        {
            double x = PyValues.ToDouble(a), y = PyValues.ToDouble(b);
            if (y == 0 && op is "/" or "//" or "%")
                throw new TemplateException("division by zero");
            return op switch
            {
                "+" => x + y,
                "-" => x - y,
                "*" => x * y,
                "/" => x / y,
                "//" => Math.Floor(x / y),
                "%" => x - y * Math.Floor(x / y),
                _ => Math.Pow(x, y),
            };
        }

        long m = PyValues.ToLong(a), n = PyValues.ToLong(b);
        try
        {
            switch (op)
            {
                case "+": return checked(m + n);
                case "-": return checked(m - n);
                case "*": return checked(m * n);
                case "//" or "%":
                    if (n == 0)
                        throw new TemplateException("integer division or modulo by zero");
                    var quotient = m / n;
                    if ((m % n != 0) && ((m < 0) != (n < 0)))
                        quotient--;
                    return op == "//" ? quotient : m - n * quotient;
                default:
                    if (n < 0)
                        return Math.Pow(m, n);
                    if (m is 0 or 1)
                        return n == 0 ? 1L : m;
                    if (m == -1)
                        return n % 2 == 0 ? 1L : -1L;
                    var result = 1L;
                    for (var i = 0; i < n; i++)
                        result = checked(result * m);
                    return result;
            }
        }
        catch (OverflowException)
        {
            throw new TemplateException($"integer overflow in {m} {op} {n}");
        }
    }

    private static T Bounded<T>(T value, int maxChars)
    {
        var size = value switch
        {
            string s => s.Length,
            ICollection<object?> c => c.Count,
            _ => 0,
        };
        return size > maxChars ? throw new TemplateLimitException($"a value the template built exceeds {maxChars} characters") : value;
    }
}
