namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>Jinja2's tests (<c>x is defined</c>, <c>x is string</c>, <c>x is equalto y</c>, ...).</summary>
internal static class IsTests
{
    public static bool Apply(string name, object? value, CallArguments args)
    {
        object? Arg() => args.Positional.Count > 0 ? args.Positional[0] : throw new TemplateException($"test '{name}' needs an argument");
        return name switch
        {
            "defined" => value is not Undefined,
            "undefined" => value is Undefined,
            "none" => value is null,
            "boolean" => value is bool,
            "true" => value is true,
            "false" => value is false,
            "integer" => value is long,
            "float" => value is double,
            "number" => value is long or double or bool,
            "string" => value is string,
            "mapping" => value is OrderedDictionary<string, object?>,
            "iterable" => PyValues.IsIterable(value),
            "sequence" => value is string or IList<object?> or OrderedDictionary<string, object?> or Undefined,
            "callable" => value is TemplateFunction,
            "sameas" => SameAs(value, Arg()),
            "eq" or "equalto" or "==" => PyValues.Equal(value, Arg()),
            "ne" or "!=" => !PyValues.Equal(value, Arg()),
            "lt" or "lessthan" or "<" => PyValues.Compare(value, Arg(), "<") < 0,
            "le" or "<=" => PyValues.Compare(value, Arg(), "<=") <= 0,
            "gt" or "greaterthan" or ">" => PyValues.Compare(value, Arg(), ">") > 0,
            "ge" or ">=" => PyValues.Compare(value, Arg(), ">=") >= 0,
            "in" => PyValues.Contains(Arg(), value),
            "odd" => PyValues.ToLong(value) % 2 != 0,
            "even" => PyValues.ToLong(value) % 2 == 0,
            "divisibleby" => PyValues.ToLong(Arg()) is var d && d != 0 ? PyValues.ToLong(value) % d == 0 : throw new TemplateException("divisibleby 0"),
            "lower" => PyValues.ToStr(value) is var s && s.Any(char.IsLetter) && !s.Any(char.IsUpper),
            "upper" => PyValues.ToStr(value) is var u && u.Any(char.IsLetter) && !u.Any(char.IsLower),
            "escaped" => false,
            _ => throw new TemplateException($"no test named '{name}'"),
        };
    }

    // `is sameas`: identity; Python's None, True and False are singletons, small values compare by value here.
    private static bool SameAs(object? a, object? b) => a is null or bool || b is null or bool ? Equals(a, b) : ReferenceEquals(a, b);
}
