using System.Text.Json.Nodes;

namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// A Jinja2 template compiled once and rendered many times, with the environment transformers'
/// apply_chat_template uses: trim_blocks and lstrip_blocks on, loop controls, <c>{% generation %}</c>,
/// no autoescape, Jinja2's default Undefined, an immutable sandbox, and the globals
/// <c>raise_exception</c>, <c>strftime_now</c>, <c>namespace</c>, <c>range</c> and <c>dict</c>.
/// </summary>
/// <remarks>
/// No Jinja library for .NET is on the package mirror, so this is the smallest interpreter that
/// renders the popular chat templates exactly as Python's Jinja2 does.
/// </remarks>
public sealed class JinjaTemplate
{
    private readonly IReadOnlyList<Node> _nodes;
    private readonly RenderLimits _limits;

    private JinjaTemplate(IReadOnlyList<Node> nodes, RenderLimits limits, bool hasGeneration)
    {
        _nodes = nodes;
        _limits = limits;
        HasGenerationBlocks = hasGeneration;
    }

    /// <summary>Whether the template marks the assistant's output with <c>{% generation %}</c> blocks.</summary>
    public bool HasGenerationBlocks { get; }

    /// <summary>Parses <paramref name="source"/>; throws <see cref="TemplateSyntaxException"/> naming the line and problem.</summary>
    public static JinjaTemplate Parse(string source, RenderLimits? limits = null)
    {
        limits ??= RenderLimits.Default;
        var nodes = TemplateParser.Parse(source, limits);
        return new JinjaTemplate(nodes, limits, ContainsGeneration(nodes));
    }

    /// <summary>
    /// Renders with <paramref name="variables"/> (JSON values, strings, numbers, bools or null) and
    /// <paramref name="now"/> as the clock <c>strftime_now</c> reads.
    /// </summary>
    public TemplateRendering Render(IReadOnlyDictionary<string, JsonNode?> variables, DateTime now)
    {
        var globals = new Scope(null);
        globals.Set("raise_exception", new TemplateFunction("raise_exception", a => throw new TemplateRaisedException(PyValues.ToStr(a.Get(0, "message", "")))));
        globals.Set("strftime_now", new TemplateFunction("strftime_now", a => Strftime.Format(now, Methods.Text(a.Limit("strftime_now", "format").Get(0, "format")))));
        globals.Set("namespace", new TemplateFunction("namespace", MakeNamespace));
        globals.Set("range", new TemplateFunction("range", Range));
        globals.Set("dict", new TemplateFunction("dict", a =>
        {
            var dict = a.Positional.Count > 0 && a.Positional[0] is OrderedDictionary<string, object?> d ? new OrderedDictionary<string, object?>(d) : new OrderedDictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (key, value) in a.Keywords)
                dict[key] = value;
            return dict;
        }));
        foreach (var (name, value) in variables)
            globals.Set(name, PyJson.FromJson(value));

        var evaluator = new Evaluator(_limits);
        var text = evaluator.Render(_nodes, globals);
        return new TemplateRendering(text, evaluator.GenerationSpans.Select(s => new TextSpan(s.Start, s.Length)).ToList());
    }

    private static Namespace MakeNamespace(CallArguments a)
    {
        var ns = new Namespace();
        foreach (var initial in a.Positional)
        {
            if (initial is not OrderedDictionary<string, object?> dict)
                throw new TemplateException("namespace() takes a dict and keyword arguments");
            foreach (var (key, value) in dict)
                ns.Attributes[key] = value;
        }

        foreach (var (key, value) in a.Keywords)
            ns.Attributes[key] = value;
        return ns;
    }

    private List<object?> Range(CallArguments a)
    {
        var n = a.Positional.Select(Methods.Integer).ToArray();
        var (start, stop, step) = n.Length switch
        {
            1 => (0L, n[0], 1L),
            2 => (n[0], n[1], 1L),
            3 => (n[0], n[1], n[2]),
            _ => throw new TemplateException("range() takes 1 to 3 integer arguments"),
        };
        if (step == 0)
            throw new TemplateException("range() step must not be zero");
        var count = step > 0 ? Math.Max(0, (stop - start + step - 1) / step) : Math.Max(0, (start - stop - step - 1) / -step);
        if (count > _limits.MaxLoopIterations)
            throw new TemplateLimitException($"range() of {count} items exceeds the limit of {_limits.MaxLoopIterations}");
        var items = new List<object?>((int)count);
        for (var i = 0L; i < count; i++)
            items.Add(start + i * step);
        return items;
    }

    private static bool ContainsGeneration(IEnumerable<Node> nodes) => nodes.Any(node => node switch
    {
        GenerationNode => true,
        IfNode i => i.Branches.Any(b => ContainsGeneration(b.Body)) || (i.Else is not null && ContainsGeneration(i.Else)),
        ForNode f => ContainsGeneration(f.Body) || (f.Else is not null && ContainsGeneration(f.Else)),
        MacroNode m => ContainsGeneration(m.Body),
        SetBlockNode s => ContainsGeneration(s.Body),
        FilterBlockNode b => ContainsGeneration(b.Body),
        _ => false,
    });
}
