using Distill.Mesh.Modeling.Models;
using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>
/// Multi-head self-attention with grouped key/value heads (GQA), rotary positions and an optional
/// KV cache. Parameter names follow HF: <c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c>, <c>o_proj</c>, and
/// Qwen3's per-head <c>q_norm</c> / <c>k_norm</c>, or Phi-3's fused <c>qkv_proj</c>.
/// </summary>
public sealed class Attention : nn.Module
{
    [ComponentName(Name = "q_proj")]
    private readonly Projection? _qProj;

    [ComponentName(Name = "k_proj")]
    private readonly Projection? _kProj;

    [ComponentName(Name = "v_proj")]
    private readonly Projection? _vProj;

    /// <summary>Phi-3's fused projection: query rows, then key rows, then value rows.</summary>
    [ComponentName(Name = "qkv_proj")]
    private readonly Projection? _qkvProj;

    [ComponentName(Name = "o_proj")]
    private readonly Projection _oProj;

    [ComponentName(Name = "q_norm")]
    private readonly RmsNorm? _qNorm;

    [ComponentName(Name = "k_norm")]
    private readonly RmsNorm? _kNorm;

    private readonly int _layer;
    private readonly int _heads;
    private readonly int _kvHeads;
    private readonly int _headDim;

    /// <summary>SDPA divides q·kᵀ by √head_dim; queries are multiplied by this to get the family's scale instead.</summary>
    private readonly double _queryScale;
    private readonly double _scale;
    private readonly double? _softcap;

    public Attention(DecoderConfig config, int layer, ScalarType dtype, Device device)
        : base(nameof(Attention))
    {
        _layer = layer;
        _heads = config.NumAttentionHeads;
        _kvHeads = config.KeyValueHeads;
        _headDim = config.HeadDimension;
        _scale = config.AttentionScale;
        _queryScale = _scale * Math.Sqrt(_headDim);
        _softcap = config.AttentionSoftcap;
        if (config.FusedProjections)
        {
            _qkvProj = new Projection(config.HiddenSize, (_heads + 2 * _kvHeads) * _headDim, config.QkvBias, dtype, device);
        }
        else
        {
            _qProj = new Projection(config.HiddenSize, _heads * _headDim, config.QkvBias, dtype, device);
            _kProj = new Projection(config.HiddenSize, _kvHeads * _headDim, config.QkvBias, dtype, device);
            _vProj = new Projection(config.HiddenSize, _kvHeads * _headDim, config.QkvBias, dtype, device);
        }

        _oProj = new Projection(_heads * _headDim, config.HiddenSize, config.OutputBias, dtype, device);
        if (config.QkNorm)
        {
            _qNorm = new RmsNorm(_headDim, config.RmsNormEps, dtype, device, config.OffsetNorms);
            _kNorm = new RmsNorm(_headDim, config.RmsNormEps, dtype, device, config.OffsetNorms);
        }

        RegisterComponents();
    }

    /// <param name="hidden">[B, T, hidden].</param>
    /// <param name="cos">Rotary table [B, 1, T, head_dim].</param>
    /// <param name="sin">Rotary table [B, 1, T, head_dim].</param>
    /// <param name="mask">Additive mask [B, 1, T, past + T]; when null, <paramref name="causal"/> decides.</param>
    /// <param name="causal">Without a mask: causal attention (prefill) or attend-to-all (one decode step).</param>
    /// <param name="cache">Past keys/values to extend, or null.</param>
    public Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor? mask, bool causal, KvCache? cache)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var (query, key, value) = Project(hidden);
        // Qwen3 normalises each head over head_dim before the rotation.
        var q = HeadNorm(_qNorm, query.view(batch, length, _heads, _headDim)).transpose(1, 2);
        var k = HeadNorm(_kNorm, key.view(batch, length, _kvHeads, _headDim)).transpose(1, 2);
        var v = value.reshape(batch, length, _kvHeads, _headDim).transpose(1, 2);
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);

        if (cache is not null)
            (k, v) = cache.Append(_layer, k, v);

        k = RepeatKv(k);
        v = RepeatKv(v);
        Tensor attended;
        if (_softcap is { } cap)
        {
            attended = SoftCappedAttention(q, k, v, mask, causal, cap);
        }
        else
        {
            if (Math.Abs(_queryScale - 1) > 1e-12)
                q = q * _queryScale;
            attended = nn.functional.scaled_dot_product_attention(q, k, v, mask, is_casual: mask is null && causal);
        }

        var merged = attended.transpose(1, 2).reshape(batch, length, _heads * _headDim);
        return _oProj.forward(merged).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Gemma 2's attention, which SDPA cannot express: scores q·kᵀ·scale capped to c·tanh(s / c)
    /// before the mask, softmax in float32.
    /// </summary>
    private Tensor SoftCappedAttention(Tensor q, Tensor k, Tensor v, Tensor? mask, bool causal, double cap)
    {
        var scores = CausalLanguageModel.SoftCap(q.matmul(k.transpose(-2, -1)) * _scale, cap);
        if (mask is not null)
        {
            scores = scores + mask;
        }
        else if (causal)
        {
            // Queries are the last of the keys (no cache: as many of each).
            var (queries, keys) = (scores.shape[^2], scores.shape[^1]);
            var allowed = torch.ones(queries, keys, dtype: ScalarType.Bool, device: scores.device).tril(keys - queries);
            scores = scores.masked_fill(allowed.logical_not(), double.NegativeInfinity);
        }

        return scores.softmax(-1, ScalarType.Float32).to_type(q.dtype).matmul(v);
    }

    private (Tensor Query, Tensor Key, Tensor Value) Project(Tensor hidden)
    {
        if (_qkvProj is null)
            return (_qProj!.forward(hidden), _kProj!.forward(hidden), _vProj!.forward(hidden));
        var fused = _qkvProj.forward(hidden);
        var (queryWidth, kvWidth) = (_heads * _headDim, _kvHeads * _headDim);
        return (fused.narrow(-1, 0, queryWidth).contiguous(), fused.narrow(-1, queryWidth, kvWidth).contiguous(), fused.narrow(-1, queryWidth + kvWidth, kvWidth).contiguous());
    }

    private static Tensor HeadNorm(RmsNorm? norm, Tensor heads) => norm is null ? heads : norm.forward(heads);

    /// <summary>Each group of query heads shares one key/value head: head h reads kv head h / groups.</summary>
    private Tensor RepeatKv(Tensor kv)
    {
        var groups = _heads / _kvHeads;
        if (groups == 1)
            return kv;
        var (b, t) = (kv.shape[0], kv.shape[2]);
        return kv.unsqueeze(2).expand(b, _kvHeads, groups, t, _headDim).reshape(b, _heads, t, _headDim);
    }
}
