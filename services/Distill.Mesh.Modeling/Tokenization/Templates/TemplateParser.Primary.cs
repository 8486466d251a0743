namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// The tightest-binding expressions: literals (strings, numbers, lists, dicts, tuples), names, the
/// postfixes <c>.name</c>, <c>[index]</c>, <c>[start:stop:step]</c> and calls, and the filters and
/// tests applied to them.
/// </summary>
internal sealed partial class TemplateParser
{
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
