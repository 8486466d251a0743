namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>A callable value: a global (raise_exception, namespace, ...), a bound method, or a macro.</summary>
internal sealed class TemplateFunction
{
    private readonly Func<CallArguments, object?> _body;

    public TemplateFunction(string name, Func<CallArguments, object?> body)
    {
        Name = name;
        _body = body;
    }

    public string Name { get; }

    public object? Invoke(CallArguments arguments) => _body(arguments);
}
