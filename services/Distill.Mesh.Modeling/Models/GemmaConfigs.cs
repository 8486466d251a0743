using System.Text.Json.Serialization;

namespace Distill.Mesh.Modeling.Models;

/// <summary>
/// HF <c>Gemma3TextConfig</c> (<c>gemma3_text</c>: Gemma 3 1B, and the text part of the larger ones):
/// embeddings scaled by √hidden, <c>(1 + weight)</c> RMSNorms around both sub-blocks, GeGLU MLP,
/// per-head q/k norms, q·kᵀ scaled by <c>query_pre_attn_scalar</c>^-½, and sliding-window layers
/// (<c>layer_types</c>, else every layer but each <c>sliding_window_pattern</c>-th) whose rotary base is
/// <c>rope_local_base_freq</c>. Defaults are HF's.
/// </summary>
public sealed class Gemma3TextConfig : DecoderConfig
{
    public Gemma3TextConfig()
    {
        HeadDim = 256;
        HiddenAct = "gelu_pytorch_tanh";
        RopeTheta = 1_000_000;
        TieWordEmbeddings = true;
    }

    [JsonPropertyName("hidden_activation")]
    public string HiddenActivation { get; set; } = "gelu_pytorch_tanh";

    [JsonPropertyName("query_pre_attn_scalar")]
    public double QueryPreAttnScalar { get; set; } = 256;

    [JsonPropertyName("attention_bias")]
    public bool AttentionBias { get; set; }

    [JsonPropertyName("sliding_window")]
    public int? SlidingWindow { get; set; } = 4096;

    /// <summary>Older configs' way to say which layers slide: all but every n-th.</summary>
    [JsonPropertyName("sliding_window_pattern")]
    public int SlidingWindowPattern { get; set; } = 6;

    [JsonPropertyName("layer_types")]
    public List<string>? LayerTypes { get; set; }

    [JsonPropertyName("rope_local_base_freq")]
    public double RopeLocalBaseFreq { get; set; } = 10_000;

    [JsonPropertyName("final_logit_softcapping")]
    public double? FinalLogitSoftcapping { get; set; }

    [JsonPropertyName("attn_logit_softcapping")]
    public double? AttnLogitSoftcapping { get; set; }

    [JsonIgnore]
    public override string Activation => HiddenActivation;

    [JsonIgnore]
    public override bool QkvBias => AttentionBias;

    [JsonIgnore]
    public override bool OutputBias => AttentionBias;

    [JsonIgnore]
    public override bool QkNorm => true;

    [JsonIgnore]
    public override bool OffsetNorms => true;

    [JsonIgnore]
    public override bool ScaleEmbeddings => true;

    [JsonIgnore]
    public override bool SandwichNorms => true;

    [JsonIgnore]
    public override double AttentionScale => 1 / Math.Sqrt(QueryPreAttnScalar);

    /// <summary>HF's default layer_types: sliding unless (layer + 1) is a multiple of sliding_window_pattern.</summary>
    public bool IsSlidingLayer(int layer) => LayerTypes is { } types ? types[layer] == "sliding_attention" : (layer + 1) % SlidingWindowPattern != 0;

    public override int? SlidingWindowOf(int layer) => IsSlidingLayer(layer) && SlidingWindow is > 0 ? SlidingWindow : null;

    public override double? LocalRopeTheta(int layer) => IsSlidingLayer(layer) ? RopeLocalBaseFreq : null;

    public override void Validate()
    {
        base.Validate();
        Qwen3Config.ValidateLayerTypes(LayerTypes, NumHiddenLayers);
        InRange(SlidingWindowPattern, "sliding_window_pattern", 1024);
        if (!(double.IsFinite(QueryPreAttnScalar) && QueryPreAttnScalar > 0) || !(double.IsFinite(RopeLocalBaseFreq) && RopeLocalBaseFreq > 0))
            throw Invalid($"query_pre_attn_scalar ({QueryPreAttnScalar}) and rope_local_base_freq ({RopeLocalBaseFreq}) must be finite and positive");
        // Released Gemma 3 configs set neither; soft-capping is not implemented for this family.
        if (FinalLogitSoftcapping is not null || AttnLogitSoftcapping is not null)
            throw Invalid("final_logit_softcapping / attn_logit_softcapping are not supported for gemma3_text (Gemma 3 checkpoints leave them null)");
    }
}
