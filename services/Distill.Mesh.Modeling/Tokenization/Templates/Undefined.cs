namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// Jinja2's default Undefined: what a missing variable, key, attribute or index evaluates to.
/// It prints as "", is false, iterates as empty and has length 0; using it further (an attribute,
/// an item, arithmetic) is an error that says what was missing.
/// </summary>
internal sealed class Undefined
{
    public Undefined(string hint) => Hint = hint;

    /// <summary>Why it is undefined, e.g. <c>'dict object' has no attribute 'tool_calls'</c>.</summary>
    public string Hint { get; }

    public TemplateException Fail() => new($"undefined value: {Hint}");
}
