namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>A rendered template: the text and the character spans its <c>{% generation %}</c> blocks produced.</summary>
public sealed record TemplateRendering(string Text, IReadOnlyList<TextSpan> GenerationSpans);
