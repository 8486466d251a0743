using System.Text;

namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// Runs a parsed template: statements here, expressions in <c>Evaluator.Expressions.cs</c>. Output
/// goes to one buffer (macros and block sets render into their own); every write, loop step and
/// macro call is checked against <see cref="RenderLimits"/>.
/// </summary>
internal sealed partial class Evaluator
{
    private enum Flow
    {
        Normal,
        Break,
        Continue,
    }

    private readonly RenderLimits _limits;
    private readonly List<(int Start, int Length)> _generationSpans = [];
    private StringBuilder _output = new();
    private long _iterations;
    private int _callDepth;
    private int _captureDepth;

    public Evaluator(RenderLimits limits) => _limits = limits;

    /// <summary>Character ranges of the output rendered inside <c>{% generation %}</c> blocks.</summary>
    public IReadOnlyList<(int Start, int Length)> GenerationSpans => _generationSpans;

    public string Render(IReadOnlyList<Node> template, Scope globals)
    {
        Execute(template, globals);
        return _output.ToString();
    }

    private Flow Execute(IReadOnlyList<Node> nodes, Scope scope)
    {
        foreach (var node in nodes)
        {
            var flow = Execute(node, scope);
            if (flow != Flow.Normal)
                return flow;
        }

        return Flow.Normal;
    }

    private Flow Execute(Node node, Scope scope)
    {
        try
        {
            switch (node)
            {
                case TextNode text:
                    Write(text.Text);
                    return Flow.Normal;
                case OutputNode output:
                    Write(PyValues.ToStr(Evaluate(output.Value, scope)));
                    return Flow.Normal;
                case IfNode branch:
                    foreach (var (condition, body) in branch.Branches)
                    {
                        if (PyValues.Truthy(Evaluate(condition, scope)))
                            return Execute(body, scope);
                    }

                    return branch.Else is null ? Flow.Normal : Execute(branch.Else, scope);
                case ForNode loop:
                    ExecuteFor(loop, scope);
                    return Flow.Normal;
                case SetNode set:
                    Assign(set.Target, Evaluate(set.Value, scope), scope);
                    return Flow.Normal;
                case SetBlockNode block:
                    scope.Set(block.Name, ApplyFilters(block.Filters, Capture(block.Body, scope), scope));
                    return Flow.Normal;
                case MacroNode macro:
                    scope.Set(macro.Name, MakeMacro(macro, scope));
                    return Flow.Normal;
                case FilterBlockNode filter:
                    Write(PyValues.ToStr(ApplyFilters(filter.Filters, Capture(filter.Body, scope), scope)));
                    return Flow.Normal;
                case GenerationNode generation:
                    var start = _output.Length;
                    var flow = Execute(generation.Body, scope);
                    if (_captureDepth == 0 && _output.Length > start)
                        _generationSpans.Add((start, _output.Length - start));
                    return flow;
                case BreakNode:
                    return Flow.Break;
                case ContinueNode:
                    return Flow.Continue;
                default:
                    throw new InvalidOperationException($"unknown node {node.GetType().Name}");
            }
        }
        catch (TemplateException e) when (e is not TemplateRaisedException && !e.Message.StartsWith("line ", StringComparison.Ordinal) && e is not TemplateLimitException)
        {
            throw new TemplateException($"line {node.Line}: {e.Message}", e);
        }
    }

    private void ExecuteFor(ForNode loop, Scope scope)
    {
        var items = PyValues.Iterate(Evaluate(loop.Iterable, scope));
        var body = new Scope(scope);
        if (loop.Filter is not null)
        {
            items = items.Where(item =>
            {
                Assign(loop.Target, item, body);
                return PyValues.Truthy(Evaluate(loop.Filter, body));
            }).ToList();
        }

        if (items.Count == 0)
        {
            if (loop.Else is not null)
                Execute(loop.Else, scope);
            return;
        }

        var context = new LoopContext(items);
        for (var i = 0; i < items.Count; i++)
        {
            if (++_iterations > _limits.MaxLoopIterations)
                throw new TemplateLimitException($"the template ran more than {_limits.MaxLoopIterations} loop iterations");
            context.Index0 = i;
            Assign(loop.Target, items[i], body);
            body.Set("loop", context);
            if (Execute(loop.Body, body) == Flow.Break)
                break;
        }
    }

    private void Assign(Expr target, object? value, Scope scope)
    {
        switch (target)
        {
            case NameExpr name:
                scope.Set(name.Name, value);
                break;
            case TupleExpr tuple:
                var items = PyValues.Iterate(value);
                if (items.Count != tuple.Items.Count)
                    throw new TemplateException($"cannot unpack {items.Count} value(s) into {tuple.Items.Count} names");
                for (var i = 0; i < items.Count; i++)
                    Assign(tuple.Items[i], items[i], scope);
                break;
            case AttributeExpr { Target: NameExpr owner } attribute:
                if (!scope.TryGet(owner.Name, out var ns) || ns is not Namespace space)
                    throw new TemplateException($"cannot assign attribute '{attribute.Name}' on '{owner.Name}', which is not a namespace()");
                space.Attributes[attribute.Name] = value;
                break;
            default:
                throw new TemplateException("invalid assignment target");
        }
    }

    private string Capture(IReadOnlyList<Node> body, Scope scope)
    {
        var saved = _output;
        _output = new StringBuilder();
        _captureDepth++;
        try
        {
            Execute(body, scope);
            return _output.ToString();
        }
        finally
        {
            _captureDepth--;
            _output = saved;
        }
    }

    private TemplateFunction MakeMacro(MacroNode macro, Scope definition) => new(macro.Name, args =>
    {
        if (++_callDepth > _limits.MaxCallDepth)
            throw new TemplateLimitException($"macro calls nested deeper than {_limits.MaxCallDepth}");
        try
        {
            if (args.Positional.Count > macro.Parameters.Count)
                throw new TemplateException($"macro '{macro.Name}' takes {macro.Parameters.Count} argument(s), {args.Positional.Count} given");
            var local = new Scope(definition);
            for (var i = 0; i < macro.Parameters.Count; i++)
            {
                var (name, fallback) = macro.Parameters[i];
                local.Set(name, args.Has(i, name) ? args.Get(i, name) : fallback is null ? new Undefined($"'{name}' is undefined") : Evaluate(fallback, local));
            }

            foreach (var (key, _) in args.Keywords)
            {
                if (macro.Parameters.All(p => p.Name != key))
                    throw new TemplateException($"macro '{macro.Name}' has no parameter '{key}'");
            }

            return Capture(macro.Body, local);
        }
        finally
        {
            _callDepth--;
        }
    });

    private object? ApplyFilters(IReadOnlyList<FilterExpr> filters, object? value, Scope scope)
    {
        foreach (var filter in filters)
            value = Filters.Apply(filter.Name, value, EvaluateArguments(filter.Arguments, scope), _limits.MaxOutputChars);
        return value;
    }

    private void Write(string text)
    {
        if (_output.Length + text.Length > _limits.MaxOutputChars)
            throw new TemplateLimitException($"the rendering exceeds {_limits.MaxOutputChars} characters");
        _output.Append(text);
    }
}
