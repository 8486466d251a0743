namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// Variables visible at a point of the template. A for loop and a macro call open a child scope
/// (what they set does not leak out, as in Jinja2); if-blocks do not.
/// </summary>
internal sealed class Scope
{
    private readonly Dictionary<string, object?> _variables = new(StringComparer.Ordinal);
    private readonly Scope? _parent;

    public Scope(Scope? parent) => _parent = parent;

    public bool TryGet(string name, out object? value)
    {
        for (var scope = this; scope is not null; scope = scope._parent)
        {
            if (scope._variables.TryGetValue(name, out value))
                return true;
        }

        value = null;
        return false;
    }

    public void Set(string name, object? value) => _variables[name] = value;
}
