namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>The template's source is not valid Jinja (or uses something this interpreter does not support).</summary>
public sealed class TemplateSyntaxException : TemplateException
{
    public TemplateSyntaxException(string problem, int line)
        : base($"chat template syntax error on line {line}: {problem}")
    {
        Problem = problem;
        Line = line;
    }

    /// <summary>What is wrong, without the line.</summary>
    public string Problem { get; }

    /// <summary>1-based line in the template source.</summary>
    public int Line { get; }
}
