namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// Builds the statement tree from the tokens: text, <c>{{ }}</c> outputs and the block tags chat
/// templates use (if, for with loop controls, set, macro, filter, generation). Expressions are in
/// <c>TemplateParser.Expressions.cs</c>. Anything else (include, extends, call, ...) is a syntax error
/// naming the tag.
/// </summary>
internal sealed partial class TemplateParser
{
    private static readonly HashSet<string> KnownTags =
        ["if", "elif", "else", "endif", "for", "endfor", "set", "endset", "macro", "endmacro", "filter", "endfilter", "generation", "endgeneration", "break", "continue"];

    private readonly List<Token> _tokens;
    private readonly int _maxNesting;
    private int _index;
    private int _depth;
    private int _loops;

    private TemplateParser(List<Token> tokens, int maxNesting)
    {
        _tokens = tokens;
        _maxNesting = maxNesting;
    }

    public static IReadOnlyList<Node> Parse(string source, RenderLimits limits)
    {
        if (source.Length > limits.MaxSourceChars)
            throw new TemplateSyntaxException($"the template is {source.Length} characters; at most {limits.MaxSourceChars} are accepted", 1);
        var parser = new TemplateParser(TemplateLexer.Tokenize(source), limits.MaxNesting);
        var body = parser.ParseBody([]);
        if (parser.Current.Kind != TokenKind.End)
            throw parser.Error($"unexpected '{{% {parser.Peek(1).Value} %}}'");
        return body;
    }

    private Token Current => _tokens[_index];

    private Token Peek(int ahead) => _tokens[Math.Min(_index + ahead, _tokens.Count - 1)];

    private Token Next() => _tokens[_index++];

    private TemplateSyntaxException Error(string problem) => new(problem, Current.Line);

    private void Expect(TokenKind kind, string what)
    {
        if (Current.Kind != kind)
            throw Error($"expected {what}, found {Describe(Current)}");
        _index++;
    }

    private void ExpectOperator(string op)
    {
        if (!Current.IsOperator(op))
            throw Error($"expected '{op}', found {Describe(Current)}");
        _index++;
    }

    private string ExpectName()
    {
        if (Current.Kind != TokenKind.Name)
            throw Error($"expected a name, found {Describe(Current)}");
        return Next().Value;
    }

    private static string Describe(Token token) => token.Kind switch
    {
        TokenKind.End => "the end of the template",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.VariableEnd => "'}}'",
        TokenKind.Text => "text",
        TokenKind.String => "a string",
        _ => $"'{token.Value}'",
    };

    // Parses statements until a block tag named in `endTags` (left unconsumed) or the end of the source.
    private List<Node> ParseBody(string[] endTags)
    {
        if (++_depth > _maxNesting)
            throw Error($"blocks nested deeper than {_maxNesting}");
        var nodes = new List<Node>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case TokenKind.End:
                    if (endTags.Length > 0)
                        throw Error($"missing '{{% {endTags[^1]} %}}'");
                    _depth--;
                    return nodes;
                case TokenKind.Text:
                    nodes.Add(new TextNode(Next().Value, token.Line));
                    break;
                case TokenKind.VariableBegin:
                    Next();
                    var value = ParseTuple(withCondition: true);
                    Expect(TokenKind.VariableEnd, "'}}'");
                    nodes.Add(new OutputNode(value, token.Line));
                    break;
                case TokenKind.BlockBegin:
                    var tag = Peek(1);
                    if (tag.Kind == TokenKind.Name && endTags.Contains(tag.Value))
                    {
                        _depth--;
                        return nodes;
                    }

                    Next();
                    nodes.Add(ParseStatement());
                    break;
                default:
                    throw Error($"unexpected {Describe(token)}");
            }
        }
    }

    private Node ParseStatement()
    {
        var line = Current.Line;
        if (Current.Kind != TokenKind.Name)
            throw Error($"expected a tag name, found {Describe(Current)}");
        var tag = Next().Value;
        Node node = tag switch
        {
            "if" => ParseIf(line),
            "for" => ParseFor(line),
            "set" => ParseSet(line),
            "macro" => ParseMacro(line),
            "filter" => ParseFilterBlock(line),
            "generation" => ParseGeneration(line),
            "break" or "continue" when _loops == 0 => throw new TemplateSyntaxException($"'{tag}' outside a loop", line),
            "break" => EndTag(new BreakNode(line)),
            "continue" => EndTag(new ContinueNode(line)),
            _ when KnownTags.Contains(tag) => throw new TemplateSyntaxException($"unexpected '{{% {tag} %}}'", line),
            _ => throw new TemplateSyntaxException($"unknown or unsupported tag '{tag}'", line),
        };
        return node;
    }

    private T EndTag<T>(T node)
    {
        Expect(TokenKind.BlockEnd, "'%}'");
        return node;
    }

    private void ExpectTag(string name)
    {
        Expect(TokenKind.BlockBegin, $"'{{% {name} %}}'");
        if (!Current.IsName(name))
            throw Error($"expected '{{% {name} %}}'");
        Next();
        Expect(TokenKind.BlockEnd, "'%}'");
    }

    private IfNode ParseIf(int line)
    {
        var branches = new List<(Expr, IReadOnlyList<Node>)>();
        IReadOnlyList<Node>? otherwise = null;
        var condition = ParseTuple(withCondition: true);
        while (true)
        {
            Expect(TokenKind.BlockEnd, "'%}'");
            var body = ParseBody(["elif", "else", "endif"]);
            branches.Add((condition, body));
            Next();
            var tag = Next().Value;
            if (tag == "elif")
            {
                condition = ParseTuple(withCondition: true);
                continue;
            }

            if (tag == "else")
            {
                Expect(TokenKind.BlockEnd, "'%}'");
                otherwise = ParseBody(["endif"]);
                ExpectTag("endif");
            }
            else
            {
                Expect(TokenKind.BlockEnd, "'%}'");
            }

            return new IfNode(branches, otherwise, line);
        }
    }

    private ForNode ParseFor(int line)
    {
        var target = ParseAssignTarget(allowNamespace: false);
        if (!Current.IsName("in"))
            throw Error($"expected 'in' in a for loop, found {Describe(Current)}");
        Next();
        var iterable = ParseTuple(withCondition: false);
        Expr? filter = null;
        if (Current.IsName("if"))
        {
            Next();
            filter = ParseExpression();
        }

        if (Current.IsName("recursive"))
            throw Error("recursive loops are not supported");
        Expect(TokenKind.BlockEnd, "'%}'");
        _loops++;
        var body = ParseBody(["else", "endfor"]);
        _loops--;
        IReadOnlyList<Node>? otherwise = null;
        if (Peek(1).IsName("else"))
        {
            Next();
            Next();
            Expect(TokenKind.BlockEnd, "'%}'");
            otherwise = ParseBody(["endfor"]);
        }

        ExpectTag("endfor");
        return new ForNode(target, iterable, filter, body, otherwise, line);
    }

    private Node ParseSet(int line)
    {
        var target = ParseAssignTarget(allowNamespace: true);
        if (Current.IsOperator("="))
        {
            Next();
            var value = ParseTuple(withCondition: true);
            Expect(TokenKind.BlockEnd, "'%}'");
            return new SetNode(target, value, line);
        }

        if (target is not NameExpr name)
            throw Error("a block set ({% set x %}...{% endset %}) assigns to one name");
        var filters = ParseFilterChain();
        Expect(TokenKind.BlockEnd, "'%}'");
        var body = ParseBody(["endset"]);
        ExpectTag("endset");
        return new SetBlockNode(name.Name, body, filters, line);
    }

    private MacroNode ParseMacro(int line)
    {
        var name = ExpectName();
        ExpectOperator("(");
        var parameters = new List<(string, Expr?)>();
        while (!Current.IsOperator(")"))
        {
            if (parameters.Count > 0)
                ExpectOperator(",");
            var parameter = ExpectName();
            Expr? fallback = null;
            if (Current.IsOperator("="))
            {
                Next();
                fallback = ParseExpression();
            }
            else if (parameters.Count > 0 && parameters[^1].Item2 is not null)
            {
                throw Error($"macro '{name}': parameter '{parameter}' without a default follows one with a default");
            }

            parameters.Add((parameter, fallback));
        }

        Next();
        Expect(TokenKind.BlockEnd, "'%}'");
        var loops = _loops;
        _loops = 0;
        var body = ParseBody(["endmacro"]);
        _loops = loops;
        ExpectTag("endmacro");
        return new MacroNode(name, parameters, body, line);
    }

    private FilterBlockNode ParseFilterBlock(int line)
    {
        var filters = new List<FilterExpr> { ParseFilter(new LiteralExpr(null, line), skipPipe: true) };
        filters.AddRange(ParseFilterChain());
        Expect(TokenKind.BlockEnd, "'%}'");
        var body = ParseBody(["endfilter"]);
        ExpectTag("endfilter");
        return new FilterBlockNode(filters, body, line);
    }

    private GenerationNode ParseGeneration(int line)
    {
        Expect(TokenKind.BlockEnd, "'%}'");
        var body = ParseBody(["endgeneration"]);
        ExpectTag("endgeneration");
        return new GenerationNode(body, line);
    }

    private List<FilterExpr> ParseFilterChain()
    {
        var filters = new List<FilterExpr>();
        while (Current.IsOperator("|"))
            filters.Add(ParseFilter(new LiteralExpr(null, Current.Line), skipPipe: false));
        return filters;
    }

    private Expr ParseAssignTarget(bool allowNamespace)
    {
        var line = Current.Line;
        if (allowNamespace && Current.Kind == TokenKind.Name && Peek(1).IsOperator(".") && Peek(2).Kind == TokenKind.Name)
        {
            var owner = Next().Value;
            Next();
            return new AttributeExpr(new NameExpr(owner, line), Next().Value, line);
        }

        var parenthesised = Current.IsOperator("(");
        if (parenthesised)
            Next();
        var names = new List<Expr> { new NameExpr(ExpectName(), line) };
        while (Current.IsOperator(","))
        {
            Next();
            if (Current.Kind != TokenKind.Name)
                break;
            names.Add(new NameExpr(Next().Value, line));
        }

        if (parenthesised)
            ExpectOperator(")");
        foreach (var n in names.Cast<NameExpr>())
        {
            if (n.Name is "true" or "false" or "none" or "True" or "False" or "None")
                throw new TemplateSyntaxException($"cannot assign to '{n.Name}'", line);
        }

        return names.Count == 1 && !parenthesised ? names[0] : new TupleExpr(names, line);
    }
}
