namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>A rendered template: the text and the character spans its <c>{% generation %}</c> blocks produced.</summary>
public sealed record TemplateRendering(string Text, IReadOnlyList<TextSpan> GenerationSpans);

/// <summary>A range of characters (UTF-16 units) in a rendered text.</summary>
public readonly record struct TextSpan(int Start, int Length)
{
    public int End => Start + Length;
}
