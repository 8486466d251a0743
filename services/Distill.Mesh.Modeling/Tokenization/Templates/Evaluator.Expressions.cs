namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>Expression evaluation with Python's operator semantics.</summary>
internal sealed partial class Evaluator
{
    private object? Evaluate(Expr expr, Scope scope)
    {
        switch (expr)
        {
            case LiteralExpr literal:
                return literal.Value;
            case NameExpr name:
                return scope.TryGet(name.Name, out var value) ? value : new Undefined($"'{name.Name}' is undefined");
            case ListExpr list:
                return list.Items.Select(i => Evaluate(i, scope)).ToList();
            case TupleExpr tuple:
                return tuple.Items.Select(i => Evaluate(i, scope)).ToArray();
            case DictExpr dict:
                var result = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (key, item) in dict.Pairs)
                {
                    var k = Evaluate(key, scope) as string ?? throw new TemplateException("dict keys must be strings here");
                    result[k] = Evaluate(item, scope);
                }

                return result;
            case AttributeExpr attribute:
                return Access.Attribute(Evaluate(attribute.Target, scope), attribute.Name);
            case ItemExpr { Index: SliceExpr slice } item:
                return Access.Slice(Evaluate(item.Target, scope), Optional(slice.Start, scope), Optional(slice.Stop, scope), Optional(slice.Step, scope));
            case ItemExpr item:
                return Access.Item(Evaluate(item.Target, scope), Evaluate(item.Index, scope));
            case CallExpr call:
                return Call(Evaluate(call.Callee, scope), EvaluateArguments(call.Arguments, scope));
            case FilterExpr filter:
                return Filters.Apply(filter.Name, Evaluate(filter.Value, scope), EvaluateArguments(filter.Arguments, scope), _limits.MaxOutputChars);
            case TestExpr test:
                return IsTests.Apply(test.Name, Evaluate(test.Value, scope), EvaluateArguments(test.Arguments, scope)) != test.Negated;
            case UnaryExpr unary:
                return Unary(unary.Operator, Evaluate(unary.Operand, scope));
            case BinaryExpr { Operator: "and" } and:
                var left = Evaluate(and.Left, scope);
                return PyValues.Truthy(left) ? Evaluate(and.Right, scope) : left;
            case BinaryExpr { Operator: "or" } or:
                var first = Evaluate(or.Left, scope);
                return PyValues.Truthy(first) ? first : Evaluate(or.Right, scope);
            case BinaryExpr binary:
                return Arithmetic.Binary(binary.Operator, Evaluate(binary.Left, scope), Evaluate(binary.Right, scope), _limits.MaxOutputChars);
            case CompareExpr compare:
                return Compare(compare, scope);
            case ConditionalExpr conditional:
                return PyValues.Truthy(Evaluate(conditional.Condition, scope))
                    ? Evaluate(conditional.Then, scope)
                    : conditional.Else is null ? new Undefined("the conditional expression has no else") : Evaluate(conditional.Else, scope);
            default:
                throw new TemplateException($"cannot evaluate {expr.GetType().Name}");
        }
    }

    private object? Optional(Expr? expr, Scope scope) => expr is null ? null : Evaluate(expr, scope);

    private CallArguments EvaluateArguments(Arguments arguments, Scope scope) =>
        arguments.Positional.Count == 0 && arguments.Keywords.Count == 0
            ? CallArguments.Empty
            : new CallArguments(arguments.Positional.Select(a => Evaluate(a, scope)).ToList(), arguments.Keywords.Select(k => (k.Name, Evaluate(k.Value, scope))).ToList());

    private static object? Call(object? callee, CallArguments arguments) => callee switch
    {
        TemplateFunction function => function.Invoke(arguments),
        Undefined undefined => throw undefined.Fail(),
        _ => throw new TemplateException($"'{PyValues.TypeName(callee)}' object is not callable"),
    };

    private static object? Unary(string op, object? operand) => op switch
    {
        "not" => !PyValues.Truthy(operand),
        "-" => operand switch
        {
            long n => (object)checked(-n),
            double d => (object)-d,
            bool b => (object)(b ? -1L : 0L),
            Undefined u => throw u.Fail(),
            _ => throw new TemplateException($"bad operand type for unary -: '{PyValues.TypeName(operand)}'"),
        },
        _ => PyValues.IsNumber(operand) ? operand is bool b ? b ? 1L : 0L : operand : operand is Undefined u ? throw u.Fail() : throw new TemplateException($"bad operand type for unary +: '{PyValues.TypeName(operand)}'"),
    };

    private bool Compare(CompareExpr compare, Scope scope)
    {
        var left = Evaluate(compare.First, scope);
        foreach (var (op, operand) in compare.Rest)
        {
            var right = Evaluate(operand, scope);
            var holds = op switch
            {
                "==" => PyValues.Equal(left, right),
                "!=" => !PyValues.Equal(left, right),
                "in" => PyValues.Contains(right, left),
                "not in" => !PyValues.Contains(right, left),
                _ => CompareOrdered(op, left, right),
            };
            if (!holds)
                return false;
            left = right;
        }

        return true;
    }

    private static bool CompareOrdered(string op, object? left, object? right)
    {
        if (left is Undefined u)
            throw u.Fail();
        if (right is Undefined v)
            throw v.Fail();
        var c = PyValues.Compare(left, right, op);
        return op switch
        {
            "<" => c < 0,
            "<=" => c <= 0,
            ">" => c > 0,
            _ => c >= 0,
        };
    }
}
