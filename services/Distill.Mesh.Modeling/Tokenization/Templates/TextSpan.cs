namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>A range of characters (UTF-16 units) in a rendered text.</summary>
public readonly record struct TextSpan(int Start, int Length)
{
    public int End => Start + Length;
}
