using Distill.Mesh.Modeling.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Models;

/// <summary>
/// An independent float64 forward pass of the HF decoder families, written with plain arrays and
/// loops from the published definitions (no TorchSharp operators): RMSNorm, rotary embeddings as
/// rotations of the pairs (i, i + d/2), grouped-query causal attention with an optional sliding
/// window, Gemma 2's attention and final logit soft-capping, Gemma 3's scaled embeddings, (1 + w) sandwich norms, GeGLU, query_pre_attn_scalar and
/// local rotary base on sliding layers, Phi-3's fused qkv_proj / gate_up_proj and partial rotary, Qwen3's per-head q/k RMSNorm before the rotation, SwiGLU MLP or routed experts (Mixtral's
/// and Qwen-MoE's namings, top-k renormalised or not, Qwen2-MoE's sigmoid-gated shared expert), tied
/// or untied output head.
/// </summary>
internal sealed class ReferenceDecoder
{
    private readonly DecoderConfig _c;
    private readonly GemmaConfig? _gemma;
    private readonly Dictionary<string, double[]> _w;
    private readonly Dictionary<string, long[]> _shapes;

    /// <param name="model">The model whose config and weights are read.</param>
    /// <param name="weights">Weights that replace the model's by name (e.g. a float64 merge).</param>
    public ReferenceDecoder(CausalLanguageModel model, IReadOnlyDictionary<string, Tensor>? weights = null)
    {
        _c = model.Config;
        _gemma = _c as GemmaConfig;
        _w = [];
        _shapes = [];
        foreach (var (name, parameter) in model.named_parameters())
        {
            var p = weights?.GetValueOrDefault(name) ?? parameter;
            _w[name] = p.detach().to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
            _shapes[name] = p.shape;
        }
    }

    /// <summary>Logits [T][vocab] for one sequence.</summary>
    public double[][] Forward(int[] ids)
    {
        var (h, d) = (_c.HiddenSize, _c.HeadDimension);
        var x = ids.Select(id => _w["model.embed_tokens.weight"].AsSpan(id * h, h).ToArray()).ToArray();
        if (_gemma is not null)
        {
            // Gemma: × √hidden, that factor rounded to the embedding dtype (float32 here).
            var scale = (double)(float)Math.Sqrt(h);
            x = x.Select(r => r.Select(e => e * scale).ToArray()).ToArray();
        }

        for (var layer = 0; layer < _c.NumHiddenLayers; layer++)
        {
            var p = $"model.layers.{layer}.";
            var normed = x.Select(r => RmsNorm(r, _w[p + "input_layernorm.weight"])).ToArray();
            var attention = Attention(normed, p + "self_attn.", _c.SlidingWindowOf(layer), layer);
            if (_gemma is not null)
            {
                // Gemma's sandwich: x + post_attention_norm(attn), then x + post_ff_norm(mlp(pre_ff_norm(x))).
                x = x.Select((r, t) => Add(r, RmsNorm(attention[t], _w[p + "post_attention_layernorm.weight"]))).ToArray();
                var fed = x.Select(r => FeedForward(RmsNorm(r, _w[p + "pre_feedforward_layernorm.weight"]), p)).ToArray();
                x = x.Select((r, t) => Add(r, RmsNorm(fed[t], _w[p + "post_feedforward_layernorm.weight"]))).ToArray();
                continue;
            }

            x = x.Select((r, t) => Add(r, attention[t])).ToArray();
            normed = x.Select(r => RmsNorm(r, _w[p + "post_attention_layernorm.weight"])).ToArray();
            var mlp = normed.Select(r => FeedForward(r, p)).ToArray();
            x = x.Select((r, t) => Add(r, mlp[t])).ToArray();
        }

        var head = _c.TieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
        var logits = x.Select(r => Linear(RmsNorm(r, _w["model.norm.weight"]), head)).ToArray();
        return _gemma?.FinalLogitSoftcapping is { } cap ? logits.Select(r => r.Select(e => cap * Math.Tanh(e / cap)).ToArray()).ToArray() : logits;
    }

    /// <summary>v / rms(v) scaled by the weight (Gemma: by 1 + weight).</summary>
    private double[] RmsNorm(double[] v, double[] weight)
    {
        var rms = Math.Sqrt(v.Sum(e => e * e) / v.Length + _c.RmsNormEps);
        var offset = _gemma is null ? 0 : 1;
        return v.Select((e, i) => e / rms * (offset + weight[i])).ToArray();
    }

    /// <summary>RMSNorm of each head's slice [h·d, (h+1)·d) in place, when the layer has that norm.</summary>
    private void NormalizeHeads(double[] v, string normName)
    {
        if (!_w.TryGetValue(normName, out var weight))
            return;
        var d = weight.Length;
        for (var offset = 0; offset < v.Length; offset += d)
            RmsNorm(v[offset..(offset + d)], weight).CopyTo(v, offset);
    }

    /// <summary>The layer's MLP, recognised by its checkpoint names: Mixtral's or Qwen-MoE's router, else dense.</summary>
    private double[] FeedForward(double[] x, string layer)
    {
        if (_w.ContainsKey(layer + "block_sparse_moe.gate.weight"))
            return Moe(x, layer + "block_sparse_moe.", ("w1", "w3", "w2"), normalize: true);
        if (_w.ContainsKey(layer + "mlp.gate_up_proj.weight"))
        {
            // Phi-3: the first half of gate_up_proj's outputs is the gate, the second half the up projection.
            var fused = Linear(x, layer + "mlp.gate_up_proj");
            var half = fused.Length / 2;
            return Linear(fused[..half].Select((g, i) => g / (1 + Math.Exp(-g)) * fused[half + i]).ToArray(), layer + "mlp.down_proj");
        }

        if (!_w.ContainsKey(layer + "mlp.gate.weight"))
            return Mlp(x, layer + "mlp.gate_proj", layer + "mlp.up_proj", layer + "mlp.down_proj");
        var routed = Moe(x, layer + "mlp.", ("gate_proj", "up_proj", "down_proj"), normalize: _c is QwenMoeConfig { NormTopkProb: true });
        if (!_w.ContainsKey(layer + "mlp.shared_expert_gate.weight"))
            return routed;
        var gate = 1 / (1 + Math.Exp(-Linear(x, layer + "mlp.shared_expert_gate")[0]));
        var shared = Mlp(x, layer + "mlp.shared_expert.gate_proj", layer + "mlp.shared_expert.up_proj", layer + "mlp.shared_expert.down_proj");
        return routed.Select((e, i) => e + gate * shared[i]).ToArray();
    }

    private double[] Linear(double[] v, string name)
    {
        var weight = _w[name.EndsWith(".weight", StringComparison.Ordinal) ? name : name + ".weight"];
        var shape = _shapes[name.EndsWith(".weight", StringComparison.Ordinal) ? name : name + ".weight"];
        var (rows, cols) = ((int)shape[0], (int)shape[1]);
        var bias = _w.GetValueOrDefault(name.Replace(".weight", "") + ".bias");
        var result = new double[rows];
        for (var r = 0; r < rows; r++)
        {
            var sum = bias?[r] ?? 0;
            for (var k = 0; k < cols; k++)
                sum += weight[r * cols + k] * v[k];
            result[r] = sum;
        }

        return result;
    }

    /// <summary>The rotated leading dimensions of a head: all of them, or Phi-3's partial_rotary_factor share.</summary>
    private int RotatedDimensions => _c is Phi3Config phi ? (int)(_c.HeadDimension * phi.PartialRotaryFactor) : _c.HeadDimension;

    private double[] InverseFrequencies(int layer)
    {
        var d = RotatedDimensions;
        // Gemma 3's sliding layers rotate with their own, unscaled base.
        var local = _c is Gemma3TextConfig gemma3 && gemma3.IsSlidingLayer(layer);
        var theta = local ? ((Gemma3TextConfig)_c).RopeLocalBaseFreq : _c.RopeTheta;
        var inv = Enumerable.Range(0, d / 2).Select(i => Math.Pow(theta, -2.0 * i / d)).ToArray();
        if (!local && _c.RopeScaling is { Kind: "llama3" } s)
        {
            var old = (double)s.OriginalMaxPositionEmbeddings!;
            for (var i = 0; i < inv.Length; i++)
            {
                var wavelength = 2 * Math.PI / inv[i];
                if (wavelength > old / s.LowFreqFactor!.Value)
                    inv[i] /= s.Factor;
                else if (wavelength >= old / s.HighFreqFactor!.Value)
                {
                    var smooth = (old / wavelength - s.LowFreqFactor!.Value) / (s.HighFreqFactor!.Value - s.LowFreqFactor!.Value);
                    inv[i] = (1 - smooth) * inv[i] / s.Factor + smooth * inv[i];
                }
            }
        }

        return inv;
    }

    /// <summary>Rotates each pair (i, i + r/2) of one head's first r dimensions by position × frequency i; the rest pass.</summary>
    private void Rotate(double[] v, int offset, int position, double[] inv)
    {
        var half = RotatedDimensions / 2;
        for (var i = 0; i < half; i++)
        {
            var (cos, sin) = (Math.Cos(position * inv[i]), Math.Sin(position * inv[i]));
            var (a, b) = (v[offset + i], v[offset + i + half]);
            v[offset + i] = a * cos - b * sin;
            v[offset + i + half] = b * cos + a * sin;
        }
    }

    private double[][] Attention(double[][] x, string prefix, int? window, int layer)
    {
        var (heads, kvHeads, d) = (_c.NumAttentionHeads, _c.KeyValueHeads, _c.HeadDimension);
        var inv = InverseFrequencies(layer);
        var scale = _gemma is not null ? 1 / Math.Sqrt(_gemma.QueryPreAttnScalar) : 1 / Math.Sqrt(d);
        double[][] q, k, v;
        if (_w.ContainsKey(prefix + "qkv_proj.weight"))
        {
            // Phi-3: one projection whose rows are the queries, then the keys, then the values.
            var fused = x.Select(r => Linear(r, prefix + "qkv_proj")).ToArray();
            q = fused.Select(r => r[..(heads * d)]).ToArray();
            k = fused.Select(r => r[(heads * d)..((heads + kvHeads) * d)]).ToArray();
            v = fused.Select(r => r[((heads + kvHeads) * d)..]).ToArray();
        }
        else
        {
            q = x.Select(r => Linear(r, prefix + "q_proj")).ToArray();
            k = x.Select(r => Linear(r, prefix + "k_proj")).ToArray();
            v = x.Select(r => Linear(r, prefix + "v_proj")).ToArray();
        }

        for (var t = 0; t < x.Length; t++)
        {
            NormalizeHeads(q[t], prefix + "q_norm.weight");
            NormalizeHeads(k[t], prefix + "k_norm.weight");
            for (var head = 0; head < heads; head++)
                Rotate(q[t], head * d, t, inv);
            for (var head = 0; head < kvHeads; head++)
                Rotate(k[t], head * d, t, inv);
        }

        var output = new double[x.Length][];
        for (var t = 0; t < x.Length; t++)
        {
            var merged = new double[heads * d];
            for (var head = 0; head < heads; head++)
            {
                var kv = head / (heads / kvHeads);
                var first = window is { } w ? Math.Max(0, t - w + 1) : 0;
                var scores = new double[t + 1 - first];
                for (var s = first; s <= t; s++)
                {
                    double dot = 0;
                    for (var i = 0; i < d; i++)
                        dot += q[t][head * d + i] * k[s][kv * d + i];
                    scores[s - first] = _gemma?.AttnLogitSoftcapping is { } cap ? cap * Math.Tanh(dot * scale / cap) : dot * scale;
                }

                var max = scores.Max();
                var weights = scores.Select(e => Math.Exp(e - max)).ToArray();
                var total = weights.Sum();
                for (var s = first; s <= t; s++)
                {
                    for (var i = 0; i < d; i++)
                        merged[head * d + i] += weights[s - first] / total * v[s][kv * d + i];
                }
            }

            output[t] = Linear(merged, prefix + "o_proj");
        }

        return output;
    }

    private double[] Mlp(double[] x, string gate, string up, string down)
    {
        var g = Linear(x, gate);
        var u = Linear(x, up);
        return Linear(g.Select((e, i) => Activate(e) * u[i]).ToArray(), down);
    }

    /// <summary>silu, or Gemma's gelu_pytorch_tanh: ½x(1 + tanh(√(2/π)(x + 0.044715x³))).</summary>
    private double Activate(double e) => _gemma is null
        ? e / (1 + Math.Exp(-e))
        : 0.5 * e * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (e + 0.044715 * e * e * e)));

    private double[] Moe(double[] x, string prefix, (string Gate, string Up, string Down) parts, bool normalize)
    {
        var logits = Linear(x, prefix + "gate");
        var max = logits.Max();
        var probabilities = logits.Select(e => Math.Exp(e - max)).ToArray();
        var chosen = Enumerable.Range(0, logits.Length).OrderByDescending(e => probabilities[e]).Take(_c.ExpertsPerToken).ToList();
        // Unnormalised, the weights are the softmax probabilities themselves.
        var norm = normalize ? chosen.Sum(e => probabilities[e]) : probabilities.Sum();
        var result = new double[x.Length];
        foreach (var e in chosen)
        {
            var expert = Mlp(x, $"{prefix}experts.{e}.{parts.Gate}", $"{prefix}experts.{e}.{parts.Up}", $"{prefix}experts.{e}.{parts.Down}");
            for (var i = 0; i < result.Length; i++)
                result[i] += probabilities[e] / norm * expert[i];
        }

        return result;
    }

    private static double[] Add(double[] a, double[] b) => a.Select((e, i) => e + b[i]).ToArray();
}
