using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization.Templates;

namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>
/// A tokenizer's Jinja chat template(s), rendered as transformers' <c>apply_chat_template(...,
/// tokenize=False)</c> does: the template sees <c>messages</c>, <c>tools</c> (None when not given),
/// <c>documents</c> (None), <c>add_generation_prompt</c>, the tokenizer's special tokens and any further
/// variables of the request (which win over the special tokens).
/// </summary>
public sealed class ChatTemplate
{
    private static readonly HashSet<string> Reserved = ["messages", "tools", "documents", "add_generation_prompt"];

    private readonly Dictionary<string, JinjaTemplate> _templates;
    private readonly IReadOnlyDictionary<string, JsonNode?> _tokens;

    /// <param name="templates">Template sources by name ("default" for a single template).</param>
    /// <param name="tokens">Special-token variables (bos_token, eos_token, ...).</param>
    /// <param name="limits">Bounds on one rendering.</param>
    public ChatTemplate(IReadOnlyDictionary<string, string> templates, IReadOnlyDictionary<string, JsonNode?> tokens, RenderLimits? limits = null)
    {
        if (templates.Count == 0)
            throw new ArgumentException("no chat template given");
        _templates = templates.ToDictionary(t => t.Key, t => Parse(t.Key, t.Value, limits));
        _tokens = tokens;
    }

    /// <summary>The template of a tokenizer's settings, or null when its folder has none.</summary>
    public static ChatTemplate? FromSettings(TokenizerSettings settings) =>
        settings.ChatTemplates.Count == 0 ? null : new ChatTemplate(settings.ChatTemplates, settings.TemplateTokens);

    /// <summary>Whether the chosen template marks assistant output with <c>{% generation %}</c>.</summary>
    public bool HasGenerationBlocks(ChatRequest request) => Choose(request).HasGenerationBlocks;

    /// <summary>Renders a conversation; a template that raises throws <see cref="TemplateRaisedException"/> with its message.</summary>
    public TemplateRendering Render(ChatRequest request)
    {
        var variables = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        foreach (var (name, value) in _tokens)
            variables[name] = value?.DeepClone();
        foreach (var (name, value) in request.Variables)
        {
            if (Reserved.Contains(name))
                throw new ArgumentException($"template variable '{name}' cannot be set directly (give it as the request's own field)");
            variables[name] = value?.DeepClone();
        }

        variables["messages"] = request.Messages.DeepClone();
        variables["tools"] = request.Tools?.DeepClone();
        variables["documents"] = null;
        variables["add_generation_prompt"] = request.AddGenerationPrompt;
        return Choose(request).Render(variables, request.Now ?? DateTime.Now);
    }

    private JinjaTemplate Choose(ChatRequest request)
    {
        if (_templates.Count == 1 && _templates.ContainsKey("default"))
            return _templates["default"];
        if (request.Tools is not null && _templates.TryGetValue("tool_use", out var toolUse))
            return toolUse;
        return _templates.TryGetValue("default", out var fallback)
            ? fallback
            : throw new TokenizerFormatException($"the tokenizer has named chat templates ({string.Join(", ", _templates.Keys)}) but none named 'default'");
    }

    private static JinjaTemplate Parse(string name, string source, RenderLimits? limits)
    {
        try
        {
            return JinjaTemplate.Parse(source, limits);
        }
        catch (TemplateSyntaxException e)
        {
            throw new TokenizerFormatException($"chat template '{name}': {e.Message}", e);
        }
    }
}
