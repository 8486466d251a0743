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

    public long? ModelMaxLength { get; init; }

    /// <summary>Reads <c>tokenizer_config.json</c> from a folder; empty settings when there is none.</summary>
    public static TokenizerSettings Load(string folder)
    {
        var path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path))
            return new TokenizerSettings();
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException($"{path}: not valid JSON ({e.Message})", e);
        }

        if (root is not JsonObject config)
            throw new TokenizerFormatException($"{path}: must be a JSON object");
        return new TokenizerSettings
        {
            BosToken = TokenText(config["bos_token"]),
            EosToken = TokenText(config["eos_token"]),
            PadToken = TokenText(config["pad_token"]),
            UnknownToken = TokenText(config["unk_token"]),
            AddBosToken = config["add_bos_token"]?.GetValue<bool>(),
            AddEosToken = config["add_eos_token"]?.GetValue<bool>(),
            ChatTemplate = Template(config["chat_template"]),
            ModelMaxLength = config["model_max_length"] is JsonValue v && v.TryGetValue<double>(out var max) && max < long.MaxValue ? (long)max : null,
        };
    }

    /// <summary>A special token is a string or an AddedToken object with <c>content</c>.</summary>
    private static string? TokenText(JsonNode? node) => node switch
    {
        null => null,
        JsonValue value when value.TryGetValue<string>(out var s) => s,
        JsonObject obj => obj["content"]?.GetValue<string>(),
        _ => null,
    };

    /// <summary>A template string, or the one named "default" in a list of named templates.</summary>
    private static string? Template(JsonNode? node) => node switch
    {
        JsonValue value when value.TryGetValue<string>(out var s) => s,
        JsonArray list => list.OfType<JsonObject>().FirstOrDefault(t => t["name"]?.GetValue<string>() == "default")?["template"]?.GetValue<string>(),
        _ => null,
    };
}
