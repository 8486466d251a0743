using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Modules;
using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Models;

/// <summary>
/// A decoder-only causal language model (HF <c>*ForCausalLM</c>) for the families in
/// <see cref="ModelConfigs.Supported"/>. State-dict names and shapes are exactly HF's.
/// </summary>
public sealed class CausalLanguageModel : nn.Module
{
    [ComponentName(Name = "model")]
    private readonly DecoderModel _model;

    [ComponentName(Name = "lm_head")]
    private readonly Projection? _lmHead;

    /// <summary>Builds a model with uninitialised weights (use <see cref="InitializeWeights"/> or load a checkpoint).</summary>
    /// <param name="config">The HF config.</param>
    /// <param name="dtype">Weight dtype (float32 or bfloat16 on CPU).</param>
    /// <param name="device">Device; <c>meta</c> builds names and shapes without allocating weights.</param>
    public CausalLanguageModel(DecoderConfig config, ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base(nameof(CausalLanguageModel))
    {
        config.Validate();
        device ??= torch.CPU;
        Config = config;
        _model = new DecoderModel(config, dtype, device);
        if (!config.TieWordEmbeddings)
            _lmHead = new Projection(config.HiddenSize, config.VocabSize, false, dtype, device);
        RegisterComponents();
    }

    public DecoderConfig Config { get; }

    /// <summary>The transformer body.</summary>
    public DecoderModel Body => _model;

    /// <summary>
    /// The output projection [vocab, hidden]: <c>lm_head.weight</c>, or the embeddings when tied.
    /// hidden·Wᵀ are the logits before <see cref="DecoderConfig.FinalLogitSoftcap"/> (Gemma 2), which callers must still apply.
    /// </summary>
    public Tensor OutputWeight => _lmHead?.Weight ?? _model.EmbedTokens.Weight;

    /// <summary>The untied output head, if any (a LoRA target).</summary>
    public Projection? LmHead => _lmHead;

    /// <summary>Element type of the weights.</summary>
    public ScalarType DType => _model.EmbedTokens.Weight.dtype;

    /// <summary>Device of the weights.</summary>
    public Device Device => _model.EmbedTokens.Weight.device;

    /// <summary>Logits [B, T, vocab] in the weights' dtype (parameters as for <see cref="Hidden"/>).</summary>
    public Tensor Forward(Tensor ids, Tensor? paddingMask = null, Tensor? positionIds = null, KvCache? cache = null, Tensor? documentIds = null)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = _model.Forward(ids, paddingMask, positionIds, cache, documentIds);
        return Logits(hidden).MoveToOuterDisposeScope();
    }

    /// <summary>Final hidden states [B, T, hidden] (for losses that project in chunks).</summary>
    /// <param name="ids">Token ids [B, T].</param>
    /// <param name="paddingMask">[B, past + T], 1 for tokens and 0 for padding.</param>
    /// <param name="positionIds">[B, T]; derived from the mask when null.</param>
    /// <param name="cache">KV cache, or null.</param>
    /// <param name="documentIds">[B, T] for packed sequences: attention stays within a document.</param>
    public Tensor Hidden(Tensor ids, Tensor? paddingMask = null, Tensor? positionIds = null, KvCache? cache = null, Tensor? documentIds = null) =>
        _model.Forward(ids, paddingMask, positionIds, cache, documentIds);

    /// <summary>Projects hidden states to logits (soft-capped where the config says so, as Gemma 2).</summary>
    public Tensor Logits(Tensor hidden)
    {
        var logits = _lmHead is not null ? _lmHead.forward(hidden) : nn.functional.linear(hidden, _model.EmbedTokens.Weight);
        return Config.FinalLogitSoftcap is { } cap ? SoftCap(logits, cap) : logits;
    }

    /// <summary><c>c·tanh(x / c)</c>: HF's logit soft-capping.</summary>
    public static Tensor SoftCap(Tensor x, double cap)
    {
        using var scope = torch.NewDisposeScope();
        return ((x / cap).tanh() * cap).MoveToOuterDisposeScope();
    }

    /// <summary>A cache sized for this model.</summary>
    public KvCache NewCache() => new(Config.NumHiddenLayers);

    /// <summary>State-dict names and shapes in ordinal order (what a checkpoint must contain).</summary>
    public IReadOnlyList<(string Name, long[] Shape)> ParameterShapes() =>
        named_parameters().Select(p => (p.name, p.parameter.shape)).OrderBy(p => p.name, StringComparer.Ordinal).ToList();

    /// <summary>Total parameter count (tied weights counted once).</summary>
    public long ParameterCount() => parameters().Sum(p => p.numel());

    /// <summary>
    /// HF-style random initialisation, reproducible by seed: weights ~ N(0, initializer_range),
    /// biases 0, norm scales 1.
    /// </summary>
    public void InitializeWeights(long seed)
    {
        using var noGrad = torch.no_grad();
        using var generator = new Generator((ulong)seed, Device);
        foreach (var (name, parameter) in named_parameters().OrderBy(p => p.name, StringComparer.Ordinal))
        {
            // Every RMSNorm scale (layer norms, the final norm, q_norm / k_norm) starts at 1: a
            // weight of 1, or Gemma's offset weight of 0.
            if (name.EndsWith("norm.weight", StringComparison.Ordinal))
                parameter.fill_(Config.OffsetNorms ? 0.0 : 1.0);
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
                parameter.zero_();
            else
                parameter.normal_(0, Config.InitializerRange, generator);
        }
    }

    /// <summary>
    /// Loads an HF model folder: builds the model, loads every tensor strictly (missing, unexpected
    /// and mis-shaped keys reported by name), then places it on <paramref name="device"/>.
    /// </summary>
    public static CausalLanguageModel FromPretrained(string folder, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        var config = ModelConfigs.Load(folder);
        using var checkpoint = SafetensorsCheckpoint.Open(folder);
        // Before anything is allocated: the config must describe these weights.
        StrictLoader.CheckSizes(config, checkpoint);
        var model = new CausalLanguageModel(config, dtype, device ?? torch.CPU);
        StrictLoader.Load(model, checkpoint);
        model.eval();
        return model;
    }

    /// <summary>
    /// Saves <c>config.json</c> and the weights (sharded above <paramref name="maxShardBytes"/>) in
    /// HF's layout. LoRA weights are not part of the base model and are skipped: merge them first,
    /// or save them as an adapter.
    /// </summary>
    public void SavePretrained(string folder, long maxShardBytes = SafetensorsCheckpoint.DefaultMaxShardBytes)
    {
        Directory.CreateDirectory(folder);
        Config.TorchDtype = DType switch
        {
            ScalarType.BFloat16 => "bfloat16",
            ScalarType.Float16 => "float16",
            _ => "float32",
        };
        Config.Architectures ??= [ArchitectureName(Config.ModelType)];
        var tensors = named_parameters()
            .Where(p => !p.name.Contains(".lora_", StringComparison.Ordinal))
            .OrderBy(p => p.name, StringComparer.Ordinal)
            .Select(p => KeyValuePair.Create(p.name, (Tensor)p.parameter))
            .ToList();
        SafetensorsCheckpoint.Save(folder, tensors, maxShardBytes);
        ModelConfigs.Save(Config, folder);
    }

    private static string ArchitectureName(string modelType) => modelType switch
    {
        "gemma2" => "Gemma2ForCausalLM",
        "gemma3_text" => "Gemma3ForCausalLM",
        "llama" => "LlamaForCausalLM",
        "qwen2" => "Qwen2ForCausalLM",
        "qwen2_moe" => "Qwen2MoeForCausalLM",
        "qwen3" => "Qwen3ForCausalLM",
        "qwen3_moe" => "Qwen3MoeForCausalLM",
        "mistral" => "MistralForCausalLM",
        "mixtral" => "MixtralForCausalLM",
        "phi3" => "Phi3ForCausalLM",
        _ => "ForCausalLM",
    };
}
