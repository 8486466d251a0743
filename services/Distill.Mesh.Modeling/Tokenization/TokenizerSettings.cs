using System.Text.Json;
using System.Text.Json.Nodes;

namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>What <c>tokenizer_config.json</c> says: special tokens, whether to add BOS/EOS, the chat template.</summary>
public sealed record TokenizerSettings
{
    public string? BosToken { get; init; }

    public string? EosToken { get; init; }

    public string? PadToken { get; init; }

    public string? UnknownToken { get; init; }

    /// <summary>null when the config does not say (the post-processor then decides).</summary>
    public bool? AddBosToken { get; init; }

    public bool? AddEosToken { get; init; }

    /// <summary>The default Jinja chat template, if any.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>
    /// All chat templates by name: "default" for a single template, or each entry of a list of
    /// named templates (transformers picks "tool_use" when tools are given and it exists).
    /// </summary>
    public IReadOnlyDictionary<string, string> ChatTemplates { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// The special-token variables a chat template sees, as transformers passes them: bos_token,
    /// eos_token, unk_token, sep_token, pad_token, cls_token, mask_token and
    /// additional_special_tokens where tokenizer_config.json gives a non-empty value (the token's content).
    /// </summary>
    public IReadOnlyDictionary<string, JsonNode?> TemplateTokens { get; init; } = new Dictionary<string, JsonNode?>();

    public long? ModelMaxLength { get; init; }

    private static readonly string[] TemplateTokenKeys =
        ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token", "additional_special_tokens"];

    /// <summary>
    /// Reads <c>tokenizer_config.json</c> from a folder (empty settings when there is none). A
    /// <c>chat_template.jinja</c> or <c>chat_template.json</c> beside it replaces the config's
    /// chat_template, as in transformers (the .jinja file first).
    /// </summary>
    public static TokenizerSettings Load(string folder)
    {
        var path = Path.Combine(folder, "tokenizer_config.json");
        var config = File.Exists(path) ? ReadObject(path) : [];
        var templates = ReadTemplates(config["chat_template"], path);
        var jinja = Path.Combine(folder, "chat_template.jinja");
        var json = Path.Combine(folder, "chat_template.json");
        if (File.Exists(jinja))
            templates = new Dictionary<string, string> { ["default"] = File.ReadAllText(jinja) };
        else if (File.Exists(json))
            templates = ReadTemplates(ReadObject(json)["chat_template"], json);

        var tokens = new Dictionary<string, JsonNode?>();
        foreach (var key in TemplateTokenKeys)
        {
            JsonNode? value = config[key] switch
            {
                JsonArray list => new JsonArray(list.Select(t => (JsonNode?)TokenText(t)).ToArray()),
                var token => TokenText(token) is { Length: > 0 } text ? JsonValue.Create(text) : null,
            };
            if (value is JsonValue || value is JsonArray { Count: > 0 })
                tokens[key] = value;
        }

        return new TokenizerSettings
        {
            BosToken = TokenText(config["bos_token"]),
            EosToken = TokenText(config["eos_token"]),
            PadToken = TokenText(config["pad_token"]),
            UnknownToken = TokenText(config["unk_token"]),
            AddBosToken = config["add_bos_token"]?.GetValue<bool>(),
            AddEosToken = config["add_eos_token"]?.GetValue<bool>(),
            ChatTemplate = templates.GetValueOrDefault("default"),
            ChatTemplates = templates,
            TemplateTokens = tokens,
            ModelMaxLength = config["model_max_length"] is JsonValue v && v.TryGetValue<double>(out var max) && max < long.MaxValue ? (long)max : null,
        };
    }

    /// <summary>A special token is a string or an AddedToken object with <c>content</c>.</summary>
    private static string? TokenText(JsonNode? node) => node switch
    {
        null => null,
        JsonValue value when value.TryGetValue<string>(out var s) => s,
        JsonObject obj => obj["content"] is JsonValue content && content.TryGetValue<string>(out var c) ? c : null,
        _ => null,
    };

    private static JsonObject ReadObject(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new TokenizerFormatException($"{path}: must be a JSON object");
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException($"{path}: not valid JSON ({e.Message})", e);
        }
    }

    /// <summary>A template string (named "default"), or a list of <c>{"name", "template"}</c> objects.</summary>
    private static Dictionary<string, string> ReadTemplates(JsonNode? node, string path)
    {
        var templates = new Dictionary<string, string>(StringComparer.Ordinal);
        switch (node)
        {
            case null:
                break;
            case JsonValue value when value.TryGetValue<string>(out var s):
                templates["default"] = s;
                break;
            case JsonArray list:
                foreach (var entry in list)
                {
                    if (entry is not JsonObject named || named["name"] is not JsonValue name || !name.TryGetValue<string>(out var n)
                        || named["template"] is not JsonValue template || !template.TryGetValue<string>(out var t))
                        throw new TokenizerFormatException($"{path}: chat_template list entries must be {{\"name\": ..., \"template\": ...}} strings");
                    templates[n] = t;
                }

                break;
            default:
                throw new TokenizerFormatException($"{path}: chat_template must be a string or a list of named templates");
        }

        return templates;
    }
}
