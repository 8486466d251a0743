using Distill.Mesh.Modeling.Modules;
using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Models;

/// <summary>The transformer body (HF's <c>model.*</c>): embeddings, decoder layers, final norm.</summary>
public sealed class DecoderModel : nn.Module
{
    [ComponentName(Name = "embed_tokens")]
    private readonly TokenEmbedding _embedTokens;

    [ComponentName(Name = "layers")]
    private readonly ModuleList<DecoderLayer> _layers;

    [ComponentName(Name = "norm")]
    private readonly RmsNorm _norm;

    private readonly DecoderConfig _config;
    private readonly RotaryEmbedding _rotary;

    /// <summary>Local rotary embeddings by base (Gemma 3's sliding layers), built once.</summary>
    private readonly Dictionary<double, RotaryEmbedding> _localRotary = [];

    public DecoderModel(DecoderConfig config, ScalarType dtype, Device device)
        : base(nameof(DecoderModel))
    {
        _config = config;
        _rotary = new RotaryEmbedding(config);
        for (var i = 0; i < config.NumHiddenLayers; i++)
        {
            if (config.LocalRopeTheta(i) is { } theta && !_localRotary.ContainsKey(theta))
                _localRotary[theta] = new RotaryEmbedding(config, theta);
        }

        _embedTokens = new TokenEmbedding(config.VocabSize, config.HiddenSize, dtype, device);
        _layers = new ModuleList<DecoderLayer>(Enumerable.Range(0, config.NumHiddenLayers)
            .Select(i => new DecoderLayer(config, i, dtype, device)).ToArray());
        _norm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device, config.OffsetNorms);
        RegisterComponents();
    }

    public TokenEmbedding EmbedTokens => _embedTokens;

    /// <summary>Recompute each layer's activations in backward instead of keeping them (training only).</summary>
    public bool ActivationCheckpointing { get; set; }

    public RotaryEmbedding Rotary => _rotary;

    /// <summary>Final hidden states [B, T, hidden] after the last norm.</summary>
    /// <param name="ids">Token ids [B, T].</param>
    /// <param name="paddingMask">[B, past + T] with 1 for tokens and 0 for padding, or null.</param>
    /// <param name="positionIds">[B, T]; derived from the padding mask (or counted from the cache) when null.</param>
    /// <param name="cache">KV cache to read and extend, or null.</param>
    /// <param name="documentIds">[B, T] for packed sequences (attention stays within a document; give per-document positions too), or null.</param>
    public Tensor Forward(Tensor ids, Tensor? paddingMask, Tensor? positionIds, KvCache? cache, Tensor? documentIds = null)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (ids.shape[0], ids.shape[1]);
        var past = cache?.Length ?? 0;
        var hidden = _embedTokens.forward(ids);
        // Gemma: √hidden rounded to the embedding dtype first, as HF does.
        if (_config.ScaleEmbeddings)
            hidden = hidden * torch.tensor(Math.Sqrt(_config.HiddenSize), dtype: hidden.dtype, device: hidden.device);
        positionIds ??= DefaultPositions(paddingMask, past, length, ids.device);
        var tables = new Dictionary<double, (Tensor Cos, Tensor Sin)>();
        var (globalCos, globalSin) = _rotary.Tables(positionIds, hidden.dtype);

        // Without an explicit mask, SDPA's causal path is exact only when queries and keys start
        // together (no cache yet); a single query after a cache attends to every key.
        var causal = past == 0 && length > 1;
        var masks = new Dictionary<int, Tensor?>();
        for (var i = 0; i < _layers.Count; i++)
        {
            var (cos, sin) = (globalCos, globalSin);
            if (_config.LocalRopeTheta(i) is { } theta)
            {
                if (!tables.TryGetValue(theta, out var local))
                    tables[theta] = local = _localRotary[theta].Tables(positionIds, hidden.dtype);
                (cos, sin) = local;
            }

            var window = _config.SlidingWindowOf(i);
            var key = window ?? 0;
            if (!masks.TryGetValue(key, out var mask))
            {
                mask = AttentionMasks.Needed(paddingMask, past, length, window, documentIds)
                    ? AttentionMasks.Build(paddingMask, batch, past, length, window, hidden.dtype, hidden.device, documentIds)
                    : null;
                masks[key] = mask;
            }

            if (ActivationCheckpointing && cache is null && training && torch.is_grad_enabled())
            {
                // With frozen embeddings (LoRA) nothing entering the layer needs a gradient, and a
                // custom autograd function with no such input is left out of the graph: mark it.
                if (!hidden.requires_grad)
                    hidden = hidden.detach().requires_grad_();
                hidden = CheckpointedLayer.Run(_layers[i], hidden, cos, sin, mask, causal);
            }
            else
            {
                hidden = _layers[i].Forward(hidden, cos, sin, mask, causal, cache);
            }
        }

        return _norm.forward(hidden).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Positions count real tokens only, so a left-padded row starts at 0 at its first token
    /// (as HF derives them: cumsum of the mask − 1). Padding positions get 1; they are masked anyway.
    /// </summary>
    private static Tensor DefaultPositions(Tensor? paddingMask, long past, long length, Device device)
    {
        if (paddingMask is null)
            return torch.arange(past, past + length, device: device).unsqueeze(0);
        var mask = paddingMask.to_type(ScalarType.Int64).to(device);
        var positions = mask.cumsum(-1) - 1;
        positions = positions.masked_fill(mask.eq(0), 1);
        return positions.narrow(1, past, length);
    }
}
