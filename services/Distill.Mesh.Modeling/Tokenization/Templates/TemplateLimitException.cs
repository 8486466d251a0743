namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>A rendering went past one of its <see cref="RenderLimits"/>.</summary>
public sealed class TemplateLimitException : TemplateException
{
    public TemplateLimitException(string message)
        : base(message)
    {
    }
}
