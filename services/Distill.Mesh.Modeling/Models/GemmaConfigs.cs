using System.Text.Json.Serialization;

namespace Distill.Mesh.Modeling.Models;

/// <summary>
/// What Gemma 2 and Gemma 3 share: embeddings scaled by √hidden, <c>(1 + weight)</c> RMSNorms around
/// both sub-blocks, GeGLU MLP (<c>hidden_activation</c>), q·kᵀ scaled by <c>query_pre_attn_scalar</c>^-½,
/// optional attention and final logit soft-capping (<c>c·tanh(x / c)</c>), and sliding-window layers
/// (<c>layer_types</c>, else each family's default pattern).
/// </summary>
public abstract class GemmaConfig : DecoderConfig
{
    protected GemmaConfig()
    {
        HeadDim = 256;
        HiddenAct = "gelu_pytorch_tanh";
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

    [JsonPropertyName("layer_types")]
    public List<string>? LayerTypes { get; set; }

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
    public override bool OffsetNorms => true;

    [JsonIgnore]
    public override bool ScaleEmbeddings => true;

    [JsonIgnore]
    public override bool SandwichNorms => true;

    [JsonIgnore]
    public override double AttentionScale => 1 / Math.Sqrt(QueryPreAttnScalar);

    [JsonIgnore]
    public override double? AttentionSoftcap => AttnLogitSoftcapping;

    [JsonIgnore]
    public override double? FinalLogitSoftcap => FinalLogitSoftcapping;

    /// <summary>Whether a layer attends within the sliding window: <c>layer_types</c>, else the family's default.</summary>
    public bool IsSlidingLayer(int layer) => LayerTypes is { } types ? types[layer] == "sliding_attention" : SlidesByDefault(layer);

    /// <summary>The family's sliding layers when <c>layer_types</c> is absent.</summary>
    protected abstract bool SlidesByDefault(int layer);

    public override int? SlidingWindowOf(int layer) => IsSlidingLayer(layer) && SlidingWindow is > 0 ? SlidingWindow : null;

    public override void Validate()
    {
        base.Validate();
        Qwen3Config.ValidateLayerTypes(LayerTypes, NumHiddenLayers);
        if (!(double.IsFinite(QueryPreAttnScalar) && QueryPreAttnScalar > 0))
            throw Invalid($"query_pre_attn_scalar must be finite and positive (got {QueryPreAttnScalar})");
        foreach (var (cap, field) in new[] { (FinalLogitSoftcapping, "final_logit_softcapping"), (AttnLogitSoftcapping, "attn_logit_softcapping") })
        {
            if (cap is { } value && !(double.IsFinite(value) && value > 0))
                throw Invalid($"{field} must be finite and positive or null (got {value})");
        }
    }
}

/// <summary>
/// HF <c>Gemma2Config</c> (Gemma 2 2B/9B/27B): every even layer slides (window <c>sliding_window</c>),
/// attention logits capped at 50 and final logits at 30 by default.
/// </summary>
public sealed class Gemma2Config : GemmaConfig
{
    public Gemma2Config()
    {
        FinalLogitSoftcapping = 30.0;
        AttnLogitSoftcapping = 50.0;
    }

    /// <summary>HF: "sliding_attention" on layers 0, 2, 4, …</summary>
    protected override bool SlidesByDefault(int layer) => layer % 2 == 0;
}

/// <summary>
/// HF <c>Gemma3TextConfig</c> (<c>gemma3_text</c>: Gemma 3 1B, and the text part of the larger ones):
/// adds per-head q/k norms, and its sliding layers (all but every <c>sliding_window_pattern</c>-th)
/// rotate with their own unscaled base <c>rope_local_base_freq</c>.
/// </summary>
public sealed class Gemma3TextConfig : GemmaConfig
{
    public Gemma3TextConfig() => RopeTheta = 1_000_000;

    /// <summary>Older configs' way to say which layers slide: all but every n-th.</summary>
    [JsonPropertyName("sliding_window_pattern")]
    public int SlidingWindowPattern { get; set; } = 6;

    [JsonPropertyName("rope_local_base_freq")]
    public double RopeLocalBaseFreq { get; set; } = 10_000;

    [JsonIgnore]
    public override bool QkNorm => true;

    /// <summary>HF's default layer_types: sliding unless (layer + 1) is a multiple of sliding_window_pattern.</summary>
    protected override bool SlidesByDefault(int layer) => (layer + 1) % SlidingWindowPattern != 0;

    public override double? LocalRopeTheta(int layer) => IsSlidingLayer(layer) ? RopeLocalBaseFreq : null;

    public override void Validate()
    {
        base.Validate();
        InRange(SlidingWindowPattern, "sliding_window_pattern", 1024);
        if (!(double.IsFinite(RopeLocalBaseFreq) && RopeLocalBaseFreq > 0))
            throw Invalid($"rope_local_base_freq must be finite and positive (got {RopeLocalBaseFreq})");
    }
}
