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

    private Expr ParsePrimary()
    {
        var token = Current;
        switch (token.Kind)
        {
            case TokenKind.Name:
                Next();
                return token.Value switch
                {
                    "true" or "True" => new LiteralExpr(true, token.Line),
                    "false" or "False" => new LiteralExpr(false, token.Line),
                    "none" or "None" => new LiteralExpr(null, token.Line),
                    _ => new NameExpr(token.Value, token.Line),
                };
            case TokenKind.String:
                var text = (string)Next().Literal!;
                while (Current.Kind == TokenKind.String)
                    text += (string)Next().Literal!;
                return new LiteralExpr(text, token.Line);
            case TokenKind.Integer or TokenKind.Float:
                return new LiteralExpr(Next().Literal, token.Line);
            case TokenKind.Operator when token.Value == "(":
                Next();
                if (Current.IsOperator(")"))
                {
                    Next();
                    return new TupleExpr([], token.Line);
                }

                var inner = ParseTuple(withCondition: true);
                ExpectOperator(")");
                return inner;
            case TokenKind.Operator when token.Value == "[":
                Next();
                var items = new List<Expr>();
                while (!Current.IsOperator("]"))
                {
                    if (items.Count > 0)
                    {
                        ExpectOperator(",");
                        if (Current.IsOperator("]"))
                            break;
                    }

                    items.Add(ParseExpression());
                }

                Next();
                return new ListExpr(items, token.Line);
            case TokenKind.Operator when token.Value == "{":
                Next();
                var pairs = new List<(Expr, Expr)>();
                while (!Current.IsOperator("}"))
                {
                    if (pairs.Count > 0)
                    {
                        ExpectOperator(",");
                        if (Current.IsOperator("}"))
                            break;
                    }

                    var key = ParseExpression();
                    ExpectOperator(":");
                    pairs.Add((key, ParseExpression()));
                }

                Next();
                return new DictExpr(pairs, token.Line);
            default:
                throw Error($"expected an expression, found {Describe(token)}");
        }
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            var token = Current;
            if (token.IsOperator("."))
            {
                Next();
                node = Current.Kind switch
                {
                    TokenKind.Name => new AttributeExpr(node, Next().Value, token.Line),
                    TokenKind.Integer => new ItemExpr(node, new LiteralExpr(Next().Literal, token.Line), token.Line),
                    _ => throw Error($"expected an attribute name after '.', found {Describe(Current)}"),
                };
            }
            else if (token.IsOperator("["))
            {
                Next();
                var index = ParseSubscript();
                ExpectOperator("]");
                node = new ItemExpr(node, index, token.Line);
            }
            else if (token.IsOperator("("))
            {
                node = new CallExpr(node, ParseArguments(), token.Line);
            }
            else
            {
                return node;
            }
        }
    }

    private Expr ParseSubscript()
    {
        var line = Current.Line;
        Expr? start = null;
        if (!Current.IsOperator(":"))
        {
            start = ParseExpression();
            if (!Current.IsOperator(":"))
                return start;
        }

        Next();
        var stop = Current.IsOperator("]") || Current.IsOperator(":") ? null : ParseExpression();
        Expr? step = null;
        if (Current.IsOperator(":"))
        {
            Next();
            step = Current.IsOperator("]") ? null : ParseExpression();
        }

        return new SliceExpr(start, stop, step, line);
    }

    private Arguments ParseArguments()
    {
        ExpectOperator("(");
        var positional = new List<Expr>();
        var keywords = new List<(string, Expr)>();
        while (!Current.IsOperator(")"))
        {
            if (positional.Count + keywords.Count > 0)
            {
                ExpectOperator(",");
                if (Current.IsOperator(")"))
                    break;
            }

            if (Current.IsOperator("*") || Current.IsOperator("**"))
                throw Error("*args and **kwargs in calls are not supported");
            if (Current.Kind == TokenKind.Name && Peek(1).IsOperator("="))
            {
                var name = Next().Value;
                Next();
                keywords.Add((name, ParseExpression()));
            }
            else
            {
                if (keywords.Count > 0)
                    throw Error("a positional argument follows a keyword argument");
                positional.Add(ParseExpression());
            }
        }

        Next();
        return new Arguments(positional, keywords);
    }

    private Expr ParseFiltersAndTests(Expr node)
    {
        while (true)
        {
            if (Current.IsOperator("|"))
                node = ParseFilter(node, skipPipe: false);
            else if (Current.IsName("is"))
                node = ParseTest(node);
            else if (Current.IsOperator("("))
                node = new CallExpr(node, ParseArguments(), Current.Line);
            else
                return node;
        }
    }

    private FilterExpr ParseFilter(Expr value, bool skipPipe)
    {
        if (!skipPipe)
            ExpectOperator("|");
        var line = Current.Line;
        var name = DottedName();
        var arguments = Current.IsOperator("(") ? ParseArguments() : Arguments.None;
        return new FilterExpr(value, name, arguments, line);
    }

    private TestExpr ParseTest(Expr value)
    {
        var line = Next().Line;
        var negated = false;
        if (Current.IsName("not"))
        {
            Next();
            negated = true;
        }

        var name = DottedName();
        var arguments = Arguments.None;
        if (Current.IsOperator("("))
        {
            arguments = ParseArguments();
        }
        else if ((Current.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float
                     || (Current.Kind == TokenKind.Operator && Current.Value is "[" or "{"))
                 && !(Current.IsName("else") || Current.IsName("or") || Current.IsName("and")))
        {
            if (Current.IsName("is"))
                throw Error("tests cannot be chained with 'is'");
            arguments = new Arguments([ParsePostfix(ParsePrimary())], []);
        }

        return new TestExpr(value, name, arguments, negated, line);
    }

    private string DottedName()
    {
        var name = ExpectName();
        while (Current.IsOperator(".") && Peek(1).Kind == TokenKind.Name)
        {
            Next();
            name += "." + Next().Value;
        }

        return name;
    }
}
