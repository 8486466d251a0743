namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// Expressions, with Jinja2's precedence from loosest to tightest: <c>a if c else b</c>, or, and,
/// not, comparisons (<c>== != &lt; &gt; &lt;= &gt;= in</c>, <c>not in</c>), <c>+ -</c>, <c>~</c>,
/// <c>* / // %</c>, <c>**</c>, unary <c>- +</c>, then attribute/item/call postfixes, and filters
/// (<c>|</c>) and tests (<c>is</c>) applied to a unary operand.
/// </summary>
internal sealed partial class TemplateParser
{
    private Expr ParseExpression(bool withCondition = true)
    {
        if (++_depth > _maxNesting)
            throw Error($"expression nested deeper than {_maxNesting}");
        var expr = withCondition ? ParseConditional() : ParseOr();
        _depth--;
        return expr;
    }

    // A comma-separated list becomes a tuple: `{{ a, b }}`, `{% set a, b = 1, 2 %}`, `for x in a, b`.
    private Expr ParseTuple(bool withCondition)
    {
        var line = Current.Line;
        var items = new List<Expr>();
        var comma = false;
        while (true)
        {
            if (items.Count > 0)
            {
                if (!Current.IsOperator(","))
                    break;
                Next();
                comma = true;
            }

            if (Current.Kind is TokenKind.BlockEnd or TokenKind.VariableEnd || Current.IsOperator(")") || (items.Count > 0 && Current.IsName("if")))
                break;
            items.Add(ParseExpression(withCondition));
        }

        if (items.Count == 0)
            throw Error($"expected an expression, found {Describe(Current)}");
        return items.Count == 1 && !comma ? items[0] : new TupleExpr(items, line);
    }

    private Expr ParseConditional()
    {
        var expr = ParseOr();
        while (Current.IsName("if"))
        {
            var line = Next().Line;
            var condition = ParseOr();
            Expr? otherwise = null;
            if (Current.IsName("else"))
            {
                Next();
                otherwise = ParseConditional();
            }

            expr = new ConditionalExpr(condition, expr, otherwise, line);
        }

        return expr;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (Current.IsName("or"))
        {
            var line = Next().Line;
            left = new BinaryExpr("or", left, ParseAnd(), line);
        }

        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (Current.IsName("and"))
        {
            var line = Next().Line;
            left = new BinaryExpr("and", left, ParseNot(), line);
        }

        return left;
    }

    private Expr ParseNot()
    {
        if (!Current.IsName("not"))
            return ParseCompare();
        var line = Next().Line;
        return new UnaryExpr("not", ParseNot(), line);
    }

    private Expr ParseCompare()
    {
        var line = Current.Line;
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            string op;
            if (Current.Kind == TokenKind.Operator && Current.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                op = Next().Value;
            }
            else if (Current.IsName("in"))
            {
                Next();
                op = "in";
            }
            else if (Current.IsName("not") && Peek(1).IsName("in"))
            {
                _index += 2;
                op = "not in";
            }
            else
            {
                break;
            }

            rest.Add((op, ParseMath1()));
        }

        return rest.Count == 0 ? first : new CompareExpr(first, rest, line);
    }

    private Expr ParseMath1()
    {
        var left = ParseConcat();
        while (Current.Kind == TokenKind.Operator && Current.Value is "+" or "-")
        {
            var op = Next();
            left = new BinaryExpr(op.Value, left, ParseConcat(), op.Line);
        }

        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMath2();
        while (Current.IsOperator("~"))
        {
            var op = Next();
            left = new BinaryExpr("~", left, ParseMath2(), op.Line);
        }

        return left;
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            var op = Next();
            left = new BinaryExpr(op.Value, left, ParsePow(), op.Line);
        }

        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary(withFilter: true);
        while (Current.IsOperator("**"))
        {
            var op = Next();
            left = new BinaryExpr("**", left, ParseUnary(withFilter: true), op.Line);
        }

        return left;
    }

    private Expr ParseUnary(bool withFilter)
    {
        if (++_depth > _maxNesting)
            throw Error($"expression nested deeper than {_maxNesting}");
        Expr node;
        if (Current.Kind == TokenKind.Operator && Current.Value is "-" or "+")
        {
            var op = Next();
            node = new UnaryExpr(op.Value, ParseUnary(withFilter: false), op.Line);
        }
        else
        {
            node = ParsePrimary();
        }

        node = ParsePostfix(node);
        if (withFilter)
            node = ParseFiltersAndTests(node);
        _depth--;
        return node;
    }
}
