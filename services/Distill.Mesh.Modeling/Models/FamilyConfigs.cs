using System.Text.Json.Serialization;

namespace Distill.Mesh.Modeling.Models;

/// <summary>HF <c>LlamaConfig</c> (Llama 2/3, and the many models that reuse it).</summary>
public sealed class LlamaConfig : DecoderConfig
{
    [JsonPropertyName("attention_bias")]
    public bool AttentionBias { get; set; }

    [JsonPropertyName("mlp_bias")]
    public bool MlpBiasField { get; set; }

    [JsonIgnore]
    public override bool QkvBias => AttentionBias;

    [JsonIgnore]
    public override bool OutputBias => AttentionBias;

    [JsonIgnore]
    public override bool MlpBias => MlpBiasField;
}

/// <summary>HF <c>Qwen2Config</c>: q/k/v carry biases; optional sliding window on upper layers.</summary>
public sealed class Qwen2Config : DecoderConfig
{
    [JsonPropertyName("use_sliding_window")]
    public bool UseSlidingWindow { get; set; }

    [JsonPropertyName("sliding_window")]
    public int? SlidingWindow { get; set; }

    [JsonPropertyName("max_window_layers")]
    public int? MaxWindowLayers { get; set; }

    [JsonIgnore]
    public override bool QkvBias => true;

    public override int? SlidingWindowOf(int layer) => WindowOf(layer, UseSlidingWindow, SlidingWindow, MaxWindowLayers);

    /// <summary>As HF Qwen2 (and Qwen2-MoE): with use_sliding_window, layers from <c>max_window_layers</c> up use the window.</summary>
    internal static int? WindowOf(int layer, bool useSlidingWindow, int? slidingWindow, int? maxWindowLayers) =>
        useSlidingWindow && slidingWindow is > 0 && layer >= (maxWindowLayers ?? 0) ? slidingWindow : null;
}

/// <summary>HF <c>MistralConfig</c>: Llama layout with an optional sliding attention window.</summary>
public sealed class MistralConfig : DecoderConfig
{
    [JsonPropertyName("sliding_window")]
    public int? SlidingWindow { get; set; }

    public override int? SlidingWindowOf(int layer) => SlidingWindow is > 0 ? SlidingWindow : null;
}

/// <summary>HF <c>MixtralConfig</c>: sparse MoE MLP (softmax router, top-k, renormalised weights).</summary>
public sealed class MixtralConfig : DecoderConfig
{
    [JsonPropertyName("num_local_experts")]
    public int NumLocalExperts { get; set; } = 8;

    [JsonPropertyName("num_experts_per_tok")]
    public int NumExpertsPerTok { get; set; } = 2;

    [JsonPropertyName("sliding_window")]
    public int? SlidingWindow { get; set; }

    [JsonPropertyName("router_aux_loss_coef")]
    public double RouterAuxLossCoef { get; set; } = 0.02;

    [JsonIgnore]
    public override int ExpertCount => NumLocalExperts;

    [JsonIgnore]
    public override int ExpertsPerToken => NumExpertsPerTok;

    public override int? SlidingWindowOf(int layer) => SlidingWindow is > 0 ? SlidingWindow : null;

    public override void Validate()
    {
        base.Validate();
        InRange(NumLocalExperts, "num_local_experts", 1024);
        InRange(NumExpertsPerTok, "num_experts_per_tok", 1024);
        if (NumExpertsPerTok > NumLocalExperts)
            throw Invalid($"num_experts_per_tok ({NumExpertsPerTok}) exceeds num_local_experts ({NumLocalExperts})");
    }
}

/// <summary>
/// HF <c>Qwen3Config</c>: Llama layout with per-head q/k RMSNorm, no q/k/v bias unless
/// <c>attention_bias</c>, an explicit <c>head_dim</c> (128 when absent, as HF defaults it), and
/// Qwen2's optional sliding window, chosen per layer by <c>layer_types</c>.
/// </summary>
public sealed class Qwen3Config : DecoderConfig
{
    public Qwen3Config() => HeadDim = 128;

    [JsonPropertyName("attention_bias")]
    public bool AttentionBias { get; set; }

    [JsonPropertyName("use_sliding_window")]
    public bool UseSlidingWindow { get; set; }

    [JsonPropertyName("sliding_window")]
    public int? SlidingWindow { get; set; }

    [JsonPropertyName("max_window_layers")]
    public int MaxWindowLayers { get; set; } = 28;

    /// <summary>"full_attention" or "sliding_attention" per layer; absent: sliding from <c>max_window_layers</c> up.</summary>
    [JsonPropertyName("layer_types")]
    public List<string>? LayerTypes { get; set; }

    [JsonIgnore]
    public override bool QkvBias => AttentionBias;

    [JsonIgnore]
    public override bool OutputBias => AttentionBias;

    [JsonIgnore]
    public override bool QkNorm => true;

    /// <summary>As HF: the window exists only with <c>use_sliding_window</c>, and applies to the "sliding_attention" layers.</summary>
    public override int? SlidingWindowOf(int layer)
    {
        if (!UseSlidingWindow || SlidingWindow is not > 0)
            return null;
        var sliding = LayerTypes is { } types ? types[layer] == SlidingAttention : layer >= MaxWindowLayers;
        return sliding ? SlidingWindow : null;
    }

    public override void Validate()
    {
        base.Validate();
        ValidateLayerTypes(LayerTypes, NumHiddenLayers);
    }

    private const string SlidingAttention = "sliding_attention";

    /// <summary>Checks a <c>layer_types</c> list: one entry per layer, each full or sliding attention.</summary>
    internal static void ValidateLayerTypes(List<string>? types, int layers)
    {
        if (types is null)
            return;
        if (types.Count != layers)
            throw Invalid($"layer_types has {types.Count} entries but num_hidden_layers is {layers}");
        if (types.FirstOrDefault(t => t is not ("full_attention" or SlidingAttention)) is { } bad)
            throw Invalid($"layer_types entry '{bad}' is not supported (supported: full_attention, sliding_attention)");
    }
}

/// <summary>
/// HF <c>Phi3Config</c> (Phi-3, Phi-3.5-mini, Phi-4-mini): fused <c>qkv_proj</c> (query, key, value
/// rows in that order) and <c>gate_up_proj</c> (gate rows, then up rows), a sliding window on every
/// layer when set, and rotary embeddings on the first <c>partial_rotary_factor</c> of each head.
/// </summary>
public sealed class Phi3Config : DecoderConfig
{
    [JsonPropertyName("sliding_window")]
    public int? SlidingWindow { get; set; }

    [JsonPropertyName("partial_rotary_factor")]
    public double PartialRotaryFactor { get; set; } = 1.0;

    [JsonIgnore]
    public override bool FusedProjections => true;

    [JsonIgnore]
    public override int RotaryDimension => (int)(HeadDimension * PartialRotaryFactor);

    public override int? SlidingWindowOf(int layer) => SlidingWindow is > 0 ? SlidingWindow : null;

    public override void Validate()
    {
        if (!(PartialRotaryFactor > 0 && PartialRotaryFactor <= 1))
            throw Invalid($"partial_rotary_factor must be in (0, 1] (got {PartialRotaryFactor})");
        base.Validate();
    }
}
