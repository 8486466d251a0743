namespace Distill.Mesh.Modeling.Tokenization.Templates;

internal enum TokenKind
{
    Text,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Integer,
    Float,
    Operator,
    End,
}

/// <summary>One lexical token; <see cref="Literal"/> holds the parsed value of strings and numbers.</summary>
internal readonly record struct Token(TokenKind Kind, string Value, int Line, object? Literal = null)
{
    public bool IsName(string name) => Kind == TokenKind.Name && Value == name;

    public bool IsOperator(string op) => Kind == TokenKind.Operator && Value == op;
}
