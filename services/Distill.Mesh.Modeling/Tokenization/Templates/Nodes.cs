namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>A statement of the template: literal text, an output, or a block tag with its body.</summary>
internal abstract record Node(int Line);

internal sealed record TextNode(string Text, int Line) : Node(Line);

internal sealed record OutputNode(Expr Value, int Line) : Node(Line);

internal sealed record IfNode(IReadOnlyList<(Expr Condition, IReadOnlyList<Node> Body)> Branches, IReadOnlyList<Node>? Else, int Line) : Node(Line);

/// <summary><c>{% for target in iterable if filter %}body{% else %}empty{% endfor %}</c>.</summary>
internal sealed record ForNode(Expr Target, Expr Iterable, Expr? Filter, IReadOnlyList<Node> Body, IReadOnlyList<Node>? Else, int Line) : Node(Line);

/// <summary><c>{% set target = value %}</c>; the target is a name, a tuple of names or <c>namespace.attribute</c>.</summary>
internal sealed record SetNode(Expr Target, Expr Value, int Line) : Node(Line);

/// <summary><c>{% set name %}body{% endset %}</c> (optionally piped through filters).</summary>
internal sealed record SetBlockNode(string Name, IReadOnlyList<Node> Body, IReadOnlyList<FilterExpr> Filters, int Line) : Node(Line);

internal sealed record MacroNode(string Name, IReadOnlyList<(string Name, Expr? Default)> Parameters, IReadOnlyList<Node> Body, int Line) : Node(Line);

/// <summary><c>{% filter name(args) %}body{% endfilter %}</c>: the body's output goes through the filters.</summary>
internal sealed record FilterBlockNode(IReadOnlyList<FilterExpr> Filters, IReadOnlyList<Node> Body, int Line) : Node(Line);

/// <summary><c>{% generation %}body{% endgeneration %}</c>: the body's output is the assistant's (transformers' AssistantTracker).</summary>
internal sealed record GenerationNode(IReadOnlyList<Node> Body, int Line) : Node(Line);

internal sealed record BreakNode(int Line) : Node(Line);

internal sealed record ContinueNode(int Line) : Node(Line);
