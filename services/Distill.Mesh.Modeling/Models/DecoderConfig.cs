using System.Text.Json;
using System.Text.Json.Serialization;

namespace Distill.Mesh.Modeling.Models;

/// <summary>
/// Fields shared by the decoder-only families (HF <c>config.json</c>, field for field). Fields this
/// class does not model are kept in <see cref="Extra"/> and written back on save.
/// </summary>
public abstract class DecoderConfig
{
    [JsonPropertyName("model_type")]
    public string ModelType { get; set; } = "";

    [JsonPropertyName("architectures")]
    public List<string>? Architectures { get; set; }

    [JsonPropertyName("vocab_size")]
    public int VocabSize { get; set; }

    [JsonPropertyName("hidden_size")]
    public int HiddenSize { get; set; }

    [JsonPropertyName("intermediate_size")]
    public int IntermediateSize { get; set; }

    [JsonPropertyName("num_hidden_layers")]
    public int NumHiddenLayers { get; set; }

    [JsonPropertyName("num_attention_heads")]
    public int NumAttentionHeads { get; set; }

    /// <summary>GQA: key/value heads; absent means as many as query heads.</summary>
    [JsonPropertyName("num_key_value_heads")]
    public int? NumKeyValueHeads { get; set; }

    /// <summary>Absent means <c>hidden_size / num_attention_heads</c>.</summary>
    [JsonPropertyName("head_dim")]
    public int? HeadDim { get; set; }

    [JsonPropertyName("hidden_act")]
    public string HiddenAct { get; set; } = "silu";

    [JsonPropertyName("max_position_embeddings")]
    public int MaxPositionEmbeddings { get; set; } = 2048;

    [JsonPropertyName("rms_norm_eps")]
    public double RmsNormEps { get; set; } = 1e-6;

    [JsonPropertyName("rope_theta")]
    public double RopeTheta { get; set; } = 10000.0;

    [JsonPropertyName("rope_scaling")]
    public RopeScaling? RopeScaling { get; set; }

    [JsonPropertyName("tie_word_embeddings")]
    public bool TieWordEmbeddings { get; set; }

    [JsonPropertyName("initializer_range")]
    public double InitializerRange { get; set; } = 0.02;

    [JsonPropertyName("bos_token_id")]
    public int? BosTokenId { get; set; }

    /// <summary>One id or a list (Llama 3.1 lists several).</summary>
    [JsonPropertyName("eos_token_id")]
    [JsonConverter(typeof(IntOrIntArrayConverter))]
    public int[]? EosTokenId { get; set; }

    [JsonPropertyName("pad_token_id")]
    public int? PadTokenId { get; set; }

    [JsonPropertyName("torch_dtype")]
    public string? TorchDtype { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }

    /// <summary>Key/value heads after defaulting.</summary>
    [JsonIgnore]
    public int KeyValueHeads => NumKeyValueHeads ?? NumAttentionHeads;

    /// <summary>Per-head dimension after defaulting.</summary>
    [JsonIgnore]
    public int HeadDimension => HeadDim ?? HiddenSize / Math.Max(1, NumAttentionHeads);

    /// <summary>Whether q/k/v projections carry biases (Qwen2 always; Llama when <c>attention_bias</c>).</summary>
    [JsonIgnore]
    public virtual bool QkvBias => false;

    /// <summary>Whether o_proj carries a bias.</summary>
    [JsonIgnore]
    public virtual bool OutputBias => false;

    /// <summary>Whether MLP projections carry biases.</summary>
    [JsonIgnore]
    public virtual bool MlpBias => false;

    /// <summary>The attention window of a layer, or null for full causal attention.</summary>
    public virtual int? SlidingWindowOf(int layer) => null;

    /// <summary>The MLP's activation: <c>silu</c> (SwiGLU) or <c>gelu_pytorch_tanh</c> (Gemma's GeGLU).</summary>
    [JsonIgnore]
    public virtual string Activation => HiddenAct;

    /// <summary>Whether RMSNorm scales by <c>(1 + weight)</c> in float32 (Gemma) rather than by <c>weight</c> after the cast back.</summary>
    [JsonIgnore]
    public virtual bool OffsetNorms => false;

    /// <summary>Whether the embeddings are multiplied by √hidden_size, rounded to the embedding dtype (Gemma).</summary>
    [JsonIgnore]
    public virtual bool ScaleEmbeddings => false;

    /// <summary>Whether attention and MLP outputs are normalised before their residual add (Gemma's post-attention, pre- and post-feed-forward norms).</summary>
    [JsonIgnore]
    public virtual bool SandwichNorms => false;

    /// <summary>The factor on q·kᵀ (HF's <c>scaling</c>): 1/√head_dim, or Gemma's <c>query_pre_attn_scalar</c>^-½.</summary>
    [JsonIgnore]
    public virtual double AttentionScale => 1 / Math.Sqrt(HeadDimension);

    /// <summary>Attention scores are soft-capped to <c>c·tanh(score / c)</c> before the mask (Gemma 2), or null.</summary>
    [JsonIgnore]
    public virtual double? AttentionSoftcap => null;

    /// <summary>Logits are soft-capped to <c>c·tanh(logit / c)</c> (Gemma 2), or null.</summary>
    [JsonIgnore]
    public virtual double? FinalLogitSoftcap => null;

    /// <summary>The rotary base of a layer with its own local rotary embedding (Gemma 3's sliding layers: <c>rope_local_base_freq</c>, unscaled), or null for the model's.</summary>
    public virtual double? LocalRopeTheta(int layer) => null;

    /// <summary>Whether q/k/v are one <c>qkv_proj</c> and gate/up one <c>gate_up_proj</c> (Phi-3).</summary>
    [JsonIgnore]
    public virtual bool FusedProjections => false;

    /// <summary>Leading dimensions of each head that are rotated (HF: <c>int(head_dim · partial_rotary_factor)</c>); the rest pass through.</summary>
    [JsonIgnore]
    public virtual int RotaryDimension => HeadDimension;

    /// <summary>Whether attention normalises each query and key head (RMSNorm over head_dim, before RoPE; Qwen3's q_norm/k_norm).</summary>
    [JsonIgnore]
    public virtual bool QkNorm => false;

    /// <summary>Experts per MoE layer, or 0 for a dense model.</summary>
    [JsonIgnore]
    public virtual int ExpertCount => 0;

    /// <summary>Experts each token is routed to.</summary>
    [JsonIgnore]
    public virtual int ExpertsPerToken => 0;

    /// <summary>Whether a layer's MLP is the sparse MoE block (false: the dense MLP).</summary>
    public virtual bool IsSparseLayer(int layer) => ExpertCount > 0;

    /// <summary>The intermediate size of one expert.</summary>
    [JsonIgnore]
    public virtual int ExpertIntermediateSize => IntermediateSize;

    /// <summary>Whether the top-k routing weights are renormalised to sum to 1 (Mixtral always; Qwen-MoE by <c>norm_topk_prob</c>).</summary>
    [JsonIgnore]
    public virtual bool NormalizeTopK => true;

    /// <summary>The intermediate size of an always-on shared expert with a sigmoid gate (Qwen2-MoE), or 0 for none.</summary>
    [JsonIgnore]
    public virtual int SharedExpertIntermediateSize => 0;

    /// <summary>
    /// The MoE block's checkpoint naming: false for Mixtral's <c>block_sparse_moe.experts.N.{w1,w3,w2}</c>,
    /// true for Qwen-MoE's <c>mlp.experts.N.{gate_proj,up_proj,down_proj}</c> (router <c>mlp.gate</c> in both layouts' places).
    /// </summary>
    [JsonIgnore]
    public virtual bool ExpertsUnderMlp => false;

    /// <summary>Checks the sizes fit together; throws naming the field.</summary>
    public virtual void Validate()
    {
        // Bounds well above any released model, so a hostile config cannot ask for a huge
        // allocation or loop (vocab_size 2^31 asked for 549 GB; 100,000 layers kept inspect busy).
        InRange(VocabSize, "vocab_size", MaxVocabulary);
        InRange(HiddenSize, "hidden_size", 1 << 16);
        InRange(IntermediateSize, "intermediate_size", 1 << 18);
        InRange(NumHiddenLayers, "num_hidden_layers", 1024);
        InRange(NumAttentionHeads, "num_attention_heads", 1024);
        InRange(KeyValueHeads, "num_key_value_heads", 1024);
        InRange(HeadDimension, "head_dim", 1024);
        InRange(MaxPositionEmbeddings, "max_position_embeddings", 1 << 24);
        if (NumAttentionHeads % KeyValueHeads != 0)
            throw Invalid($"num_attention_heads ({NumAttentionHeads}) must be a multiple of num_key_value_heads ({KeyValueHeads})");
        if (HeadDim is null && HiddenSize % NumAttentionHeads != 0)
            throw Invalid($"hidden_size ({HiddenSize}) must be divisible by num_attention_heads ({NumAttentionHeads}) when head_dim is not given");
        if (RotaryDimension % 2 != 0 || RotaryDimension <= 0 || RotaryDimension > HeadDimension)
            throw Invalid($"the rotated part of each head ({RotaryDimension} of head_dim {HeadDimension}) must be even and in [2, head_dim]");
        if (Activation is not ("silu" or "swish" or "gelu_pytorch_tanh"))
            throw Invalid($"hidden_act '{Activation}' is not supported (supported: silu, gelu_pytorch_tanh)");
        if (!(double.IsFinite(RmsNormEps) && RmsNormEps > 0) || !(double.IsFinite(RopeTheta) && RopeTheta > 0))
            throw Invalid($"rms_norm_eps ({RmsNormEps}) and rope_theta ({RopeTheta}) must be finite and positive");
        if (RopeScaling is { } scaling)
        {
            if (!RopeScaling.SupportedTypes.Contains(scaling.Kind))
                throw Invalid($"rope_scaling type '{scaling.Kind}' is not supported (supported: {string.Join(", ", RopeScaling.SupportedTypes)})");
            if (!(double.IsFinite(scaling.Factor) && scaling.Factor > 0))
                throw Invalid($"rope_scaling.factor must be finite and positive (got {scaling.Factor})");
            if (scaling.Kind == "llama3" && (scaling.LowFreqFactor is null || scaling.HighFreqFactor is null || scaling.OriginalMaxPositionEmbeddings is null))
                throw Invalid("llama3 rope_scaling needs low_freq_factor, high_freq_factor and original_max_position_embeddings");
        }
    }

    /// <summary>The largest vocabulary accepted (4,194,304; released models stay under 300k).</summary>
    public const int MaxVocabulary = 1 << 22;

    protected static void InRange(int value, string field, int max)
    {
        if (value <= 0 || value > max)
            throw Invalid($"{field} must be in [1, {max}] (got {value})");
    }

    protected static void Positive(int value, string field)
    {
        if (value <= 0)
            throw Invalid($"{field} must be positive (got {value})");
    }

    protected static ModelConfigException Invalid(string message) => new($"config.json: {message}");
}
