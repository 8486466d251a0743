namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>The template called <c>raise_exception(message)</c> (Jinja2's TemplateError in transformers).</summary>
public sealed class TemplateRaisedException : TemplateException
{
    public TemplateRaisedException(string templateMessage)
        : base($"the chat template raised an error: {templateMessage}") => TemplateMessage = templateMessage;

    /// <summary>The message the template passed to raise_exception, verbatim.</summary>
    public string TemplateMessage { get; }
}
