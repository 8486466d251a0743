namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>The object <c>namespace(...)</c> makes: the one value a template may change with <c>{% set ns.x = ... %}</c>.</summary>
internal sealed class Namespace
{
    public OrderedDictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}
