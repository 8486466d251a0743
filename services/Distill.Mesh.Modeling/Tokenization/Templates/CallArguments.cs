namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>Evaluated arguments of a call, filter or test, read the way Python binds parameters.</summary>
internal sealed class CallArguments
{
    public static readonly CallArguments Empty = new([], []);

    public CallArguments(IReadOnlyList<object?> positional, IReadOnlyList<(string Name, object? Value)> keywords)
    {
        Positional = positional;
        Keywords = keywords;
    }

    public IReadOnlyList<object?> Positional { get; }

    public IReadOnlyList<(string Name, object? Value)> Keywords { get; }

    /// <summary>Parameter <paramref name="name"/> at position <paramref name="position"/>, or <paramref name="fallback"/>.</summary>
    public object? Get(int position, string name, object? fallback = null)
    {
        foreach (var (key, value) in Keywords)
        {
            if (key == name)
                return value;
        }

        return position >= 0 && position < Positional.Count ? Positional[position] : fallback;
    }

    public bool Has(int position, string name) => (position >= 0 && position < Positional.Count) || Keywords.Any(k => k.Name == name);

    /// <summary>Rejects arguments beyond what <paramref name="function"/> takes, naming it.</summary>
    public CallArguments Limit(string function, params string[] names)
    {
        if (Positional.Count > names.Length)
            throw new TemplateException($"{function}() takes at most {names.Length} positional argument(s) ({Positional.Count} given)");
        foreach (var (key, _) in Keywords)
        {
            if (!names.Contains(key))
                throw new TemplateException($"{function}() got an unexpected keyword argument '{key}'");
        }

        return this;
    }
}
