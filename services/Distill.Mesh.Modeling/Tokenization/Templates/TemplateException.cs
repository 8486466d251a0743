namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// A chat template failed: it could not be parsed, it raised, it did something Python's Jinja2
/// would refuse (an undefined attribute, adding a string to a number, ...), or it hit a bound.
/// </summary>
public class TemplateException : Exception
{
    public TemplateException(string message)
        : base(message)
    {
    }

    public TemplateException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
