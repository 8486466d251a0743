using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Distill.Mesh.Modeling.Models;

/// <summary>Reads and writes HF <c>config.json</c>, choosing the family by <c>model_type</c>.</summary>
public static class ModelConfigs
{
    /// <summary>The <c>model_type</c> values this project implements.</summary>
    public static readonly IReadOnlyDictionary<string, Type> Supported = new Dictionary<string, Type>
    {
        ["gemma2"] = typeof(Gemma2Config),
        ["gemma3_text"] = typeof(Gemma3TextConfig),
        ["llama"] = typeof(LlamaConfig),
        ["mistral"] = typeof(MistralConfig),
        ["mixtral"] = typeof(MixtralConfig),
        ["phi3"] = typeof(Phi3Config),
        ["qwen2"] = typeof(Qwen2Config),
        ["qwen2_moe"] = typeof(Qwen2MoeConfig),
        ["qwen3"] = typeof(Qwen3Config),
        ["qwen3_moe"] = typeof(Qwen3MoeConfig),
    };

    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowReadingFromString | JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Loads <c>config.json</c> from a model folder or a file path.</summary>
    public static DecoderConfig Load(string path)
    {
        var file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file))
            throw new FileNotFoundException($"no config.json at '{file}'");
        Specs.Storage.RegularFile.Require(file);
        try
        {
            return Parse(File.ReadAllText(file));
        }
        catch (ModelConfigException e)
        {
            throw new ModelConfigException($"{file}: {e.Message}", e);
        }
    }

    /// <summary>Parses config JSON text and validates it.</summary>
    public static DecoderConfig Parse(string json)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new ModelConfigException($"config.json is not valid JSON ({e.Message})", e);
        }

        if (root is not JsonObject fields)
            throw new ModelConfigException("config.json must be a JSON object");
        if (fields["model_type"] is not JsonValue typeValue || !typeValue.TryGetValue<string>(out var modelType))
            throw new ModelConfigException(fields.ContainsKey("model_type") ? $"'model_type' must be a string (got {fields["model_type"]?.ToJsonString() ?? "null"})" : "config.json has no 'model_type'");
        if (!Supported.TryGetValue(modelType, out var type))
            throw new ModelConfigException($"model_type '{modelType}' is not supported (supported: {string.Join(", ", Supported.Keys)})");

        DecoderConfig config;
        try
        {
            config = (DecoderConfig)root.Deserialize(type, Options)!;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or OverflowException)
        {
            throw new ModelConfigException($"config.json field {(e as JsonException)?.Path}: {e.Message}", e);
        }

        config.Validate();
        return config;
    }

    /// <summary>Serialises a config (including fields kept from the original file).</summary>
    public static string ToJson(DecoderConfig config) => JsonSerializer.Serialize(config, config.GetType(), Options);

    /// <summary>Writes <c>config.json</c> into a folder, atomically.</summary>
    public static void Save(DecoderConfig config, string folder) =>
        Specs.Storage.AtomicFile.WriteAllText(Path.Combine(folder, "config.json"), ToJson(config) + "\n");
}
