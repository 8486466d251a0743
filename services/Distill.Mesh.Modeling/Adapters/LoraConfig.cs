using System.Text.Json;
using System.Text.Json.Serialization;

namespace Distill.Mesh.Modeling.Adapters;

/// <summary>PEFT's <c>adapter_config.json</c> for a LoRA adapter, field for field (unknown fields are kept).</summary>
public sealed class LoraConfig
{
    [JsonPropertyName("peft_type")]
    public string PeftType { get; set; } = "LORA";

    [JsonPropertyName("task_type")]
    public string TaskType { get; set; } = "CAUSAL_LM";

    [JsonPropertyName("base_model_name_or_path")]
    public string? BaseModelNameOrPath { get; set; }

    [JsonPropertyName("r")]
    public int R { get; set; } = 8;

    [JsonPropertyName("lora_alpha")]
    public double LoraAlpha { get; set; } = 8;

    [JsonPropertyName("lora_dropout")]
    public double LoraDropout { get; set; }

    /// <summary>
    /// A list of module names (a module matches when its path equals or ends with ".name"), the
    /// string "all-linear" (every linear layer but the output head), or one regex string matched
    /// against the whole module path — PEFT's three forms.
    /// </summary>
    [JsonPropertyName("target_modules")]
    public JsonElement TargetModules { get; set; } = JsonSerializer.SerializeToElement(new[] { "q_proj", "v_proj" });

    /// <summary>Per-module rank overrides: regex key matched against the end of the module path.</summary>
    [JsonPropertyName("rank_pattern")]
    public Dictionary<string, int> RankPattern { get; set; } = [];

    /// <summary>Per-module alpha overrides, keyed as <see cref="RankPattern"/>.</summary>
    [JsonPropertyName("alpha_pattern")]
    public Dictionary<string, double> AlphaPattern { get; set; } = [];

    [JsonPropertyName("bias")]
    public string Bias { get; set; } = "none";

    [JsonPropertyName("use_rslora")]
    public bool UseRsLora { get; set; }

    [JsonPropertyName("use_dora")]
    public bool UseDora { get; set; }

    [JsonPropertyName("fan_in_fan_out")]
    public bool FanInFanOut { get; set; }

    [JsonPropertyName("inference_mode")]
    public bool InferenceMode { get; set; } = true;

    [JsonPropertyName("init_lora_weights")]
    public JsonElement? InitLoraWeights { get; set; }

    [JsonPropertyName("modules_to_save")]
    public List<string>? ModulesToSave { get; set; }

    [JsonPropertyName("layers_to_transform")]
    public JsonElement? LayersToTransform { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }

    /// <summary>A config targeting the given module names (or "all-linear").</summary>
    public static LoraConfig For(int rank, double alpha, params string[] targets) => new()
    {
        R = rank,
        LoraAlpha = alpha,
        TargetModules = targets is ["all-linear"]
            ? JsonSerializer.SerializeToElement("all-linear")
            : JsonSerializer.SerializeToElement(targets),
    };

    /// <summary>Rejects what this implementation cannot honour, naming the field.</summary>
    public void Validate()
    {
        if (PeftType != "LORA")
            throw new AdapterFormatException($"adapter_config.json: peft_type '{PeftType}' is not supported (supported: LORA)");
        if (R < 1)
            throw new AdapterFormatException($"adapter_config.json: r must be ≥ 1 (got {R})");
        if (LoraDropout is < 0 or >= 1)
            throw new AdapterFormatException($"adapter_config.json: lora_dropout must be in [0, 1) (got {LoraDropout})");
        if (UseDora)
            throw new AdapterFormatException("adapter_config.json: use_dora is not supported");
        if (FanInFanOut)
            throw new AdapterFormatException("adapter_config.json: fan_in_fan_out applies to Conv1D models (GPT-2), which are not supported");
        if (Bias != "none")
            throw new AdapterFormatException($"adapter_config.json: bias '{Bias}' is not supported (supported: none)");
        if (ModulesToSave is { Count: > 0 })
            throw new AdapterFormatException("adapter_config.json: modules_to_save is not supported");
        if (LayersToTransform is { ValueKind: not JsonValueKind.Null })
            throw new AdapterFormatException("adapter_config.json: layers_to_transform is not supported");
        foreach (var (key, rank) in RankPattern)
        {
            if (rank < 1)
                throw new AdapterFormatException($"adapter_config.json: rank_pattern['{key}'] must be ≥ 1");
        }

        if (TargetModules.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
            throw new AdapterFormatException("adapter_config.json: target_modules must be a list of names or a string");
        foreach (var (key, value) in Extra ?? [])
        {
            if (Unhonoured.Contains(key) && value.ValueKind is not (JsonValueKind.Null or JsonValueKind.False) && !(value.ValueKind == JsonValueKind.Array && value.GetArrayLength() == 0))
                throw new AdapterFormatException($"adapter_config.json: {key} {value.GetRawText()} is not supported (it changes which weights the adapter touches or how; applying the rest would be a different model)");
        }
    }

    /// <summary>
    /// Newer PEFT fields that change the adapted model when set (PEFT writes them as null, false or
    /// [] when unused): skipping one would silently load, train or merge something else.
    /// </summary>
    private static readonly HashSet<string> Unhonoured =
        ["exclude_modules", "layer_replication", "lora_bias", "use_qalora", "trainable_token_indices", "target_parameters", "alora_invocation_tokens", "megatron_config"];
}
