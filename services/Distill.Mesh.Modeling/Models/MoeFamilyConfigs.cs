using System.Text.Json.Serialization;

namespace Distill.Mesh.Modeling.Models;

/// <summary>
/// The MoE fields Qwen2-MoE and Qwen3-MoE share: a router <c>mlp.gate</c>, <c>num_experts</c> experts of
/// <c>moe_intermediate_size</c> under <c>mlp.experts.N</c>, top-k routing renormalised only with
/// <c>norm_topk_prob</c>, and dense layers where <c>mlp_only_layers</c> lists them or
/// <c>(layer + 1) % decoder_sparse_step != 0</c>. Defaults are HF's Qwen3-MoE ones.
/// </summary>
public abstract class QwenMoeConfig : DecoderConfig
{
    [JsonPropertyName("num_experts")]
    public int NumExperts { get; set; } = 128;

    [JsonPropertyName("num_experts_per_tok")]
    public int NumExpertsPerTok { get; set; } = 8;

    [JsonPropertyName("moe_intermediate_size")]
    public int MoeIntermediateSize { get; set; } = 768;

    [JsonPropertyName("norm_topk_prob")]
    public bool NormTopkProb { get; set; }

    [JsonPropertyName("decoder_sparse_step")]
    public int DecoderSparseStep { get; set; } = 1;

    [JsonPropertyName("mlp_only_layers")]
    public List<int>? MlpOnlyLayers { get; set; }

    [JsonIgnore]
    public override int ExpertCount => NumExperts;

    [JsonIgnore]
    public override int ExpertsPerToken => NumExpertsPerTok;

    [JsonIgnore]
    public override int ExpertIntermediateSize => MoeIntermediateSize;

    [JsonIgnore]
    public override bool NormalizeTopK => NormTopkProb;

    [JsonIgnore]
    public override bool ExpertsUnderMlp => true;

    /// <summary>HF's rule, word for word: not listed in mlp_only_layers, experts exist, and (layer + 1) divisible by the step.</summary>
    public override bool IsSparseLayer(int layer) =>
        !(MlpOnlyLayers?.Contains(layer) ?? false) && NumExperts > 0 && (layer + 1) % DecoderSparseStep == 0;

    public override void Validate()
    {
        base.Validate();
        InRange(NumExperts, "num_experts", 1024);
        InRange(NumExpertsPerTok, "num_experts_per_tok", 1024);
        InRange(MoeIntermediateSize, "moe_intermediate_size", 1 << 18);
        InRange(DecoderSparseStep, "decoder_sparse_step", 1024);
        if (NumExpertsPerTok > NumExperts)
            throw Invalid($"num_experts_per_tok ({NumExpertsPerTok}) exceeds num_experts ({NumExperts})");
        foreach (var layer in MlpOnlyLayers ?? [])
        {
            if (layer < 0 || layer >= NumHiddenLayers)
                throw Invalid($"mlp_only_layers entry {layer} is outside the {NumHiddenLayers} layers");
        }
    }
}

/// <summary>
/// HF <c>Qwen2MoeConfig</c> (Qwen1.5-MoE, Qwen2-57B-A14B): Qwen2 attention (q/k/v biases unless
/// <c>qkv_bias</c> is false, sliding window from <c>max_window_layers</c> up) and, beside the routed
/// experts, a shared expert of <c>shared_expert_intermediate_size</c> scaled by
/// <c>sigmoid(shared_expert_gate(x))</c>.
/// </summary>
public sealed class Qwen2MoeConfig : QwenMoeConfig
{
    public Qwen2MoeConfig()
    {
        NumExperts = 60;
        NumExpertsPerTok = 4;
        MoeIntermediateSize = 1408;
    }

    [JsonPropertyName("shared_expert_intermediate_size")]
    public int SharedExpertIntermediateSizeField { get; set; } = 5632;

    [JsonPropertyName("qkv_bias")]
    public bool QkvBiasField { get; set; } = true;

    [JsonPropertyName("use_sliding_window")]
    public bool UseSlidingWindow { get; set; }

    [JsonPropertyName("sliding_window")]
    public int? SlidingWindow { get; set; }

    [JsonPropertyName("max_window_layers")]
    public int? MaxWindowLayers { get; set; }

    [JsonIgnore]
    public override bool QkvBias => QkvBiasField;

    [JsonIgnore]
    public override int SharedExpertIntermediateSize => SharedExpertIntermediateSizeField;

    public override int? SlidingWindowOf(int layer) => Qwen2Config.WindowOf(layer, UseSlidingWindow, SlidingWindow, MaxWindowLayers);

    public override void Validate()
    {
        base.Validate();
        InRange(SharedExpertIntermediateSizeField, "shared_expert_intermediate_size", 1 << 18);
    }
}

/// <summary>
/// HF <c>Qwen3MoeConfig</c> (Qwen3-30B-A3B, Qwen3-235B-A22B): Qwen3 attention (per-head q/k
/// RMSNorm, bias only with <c>attention_bias</c>) and routed experts without a shared one. HF's
/// attention takes <c>sliding_window</c> on every layer when <c>use_sliding_window</c> is set.
/// </summary>
public sealed class Qwen3MoeConfig : QwenMoeConfig
{
    [JsonPropertyName("attention_bias")]
    public bool AttentionBias { get; set; }

    [JsonPropertyName("use_sliding_window")]
    public bool UseSlidingWindow { get; set; }

    [JsonPropertyName("sliding_window")]
    public int? SlidingWindow { get; set; }

    [JsonIgnore]
    public override bool QkvBias => AttentionBias;

    [JsonIgnore]
    public override bool OutputBias => AttentionBias;

    [JsonIgnore]
    public override bool QkNorm => true;

    public override int? SlidingWindowOf(int layer) => UseSlidingWindow && SlidingWindow is > 0 ? SlidingWindow : null;
}
