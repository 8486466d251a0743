using Distill.Mesh.Modeling.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Models;

/// <summary>
/// An independent float64 forward pass of the HF decoder families, written with plain arrays and
/// loops from the published definitions (no TorchSharp operators): RMSNorm, rotary embeddings as
/// rotations of the pairs (i, i + d/2), grouped-query causal attention with an optional sliding
/// window, SwiGLU MLP or Mixtral's routed experts, tied or untied output head.
/// </summary>
internal sealed class ReferenceDecoder
{
    private readonly DecoderConfig _c;
    private readonly Dictionary<string, double[]> _w;
    private readonly Dictionary<string, long[]> _shapes;

    public ReferenceDecoder(CausalLanguageModel model)
    {
        _c = model.Config;
        _w = [];
        _shapes = [];
        foreach (var (name, p) in model.named_parameters())
        {
            _w[name] = p.detach().to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
            _shapes[name] = p.shape;
        }
    }

    /// <summary>Logits [T][vocab] for one sequence.</summary>
    public double[][] Forward(int[] ids)
    {
        var (h, d) = (_c.HiddenSize, _c.HeadDimension);
        var x = ids.Select(id => _w["model.embed_tokens.weight"].AsSpan(id * h, h).ToArray()).ToArray();
        for (var layer = 0; layer < _c.NumHiddenLayers; layer++)
        {
            var p = $"model.layers.{layer}.";
            var normed = x.Select(r => RmsNorm(r, _w[p + "input_layernorm.weight"])).ToArray();
            var attention = Attention(normed, p + "self_attn.", _c.SlidingWindowOf(layer));
            x = x.Select((r, t) => Add(r, attention[t])).ToArray();
            normed = x.Select(r => RmsNorm(r, _w[p + "post_attention_layernorm.weight"])).ToArray();
            var mlp = normed.Select(r => _c.ExpertCount > 0 ? Moe(r, p + "block_sparse_moe.") : Mlp(r, p + "mlp.gate_proj", p + "mlp.up_proj", p + "mlp.down_proj")).ToArray();
            x = x.Select((r, t) => Add(r, mlp[t])).ToArray();
        }

        var head = _c.TieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
        return x.Select(r => Linear(RmsNorm(r, _w["model.norm.weight"]), head)).ToArray();
    }

    private double[] RmsNorm(double[] v, double[] weight)
    {
        var rms = Math.Sqrt(v.Sum(e => e * e) / v.Length + _c.RmsNormEps);
        return v.Select((e, i) => e / rms * weight[i]).ToArray();
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

    private double[] InverseFrequencies()
    {
        var d = _c.HeadDimension;
        var inv = Enumerable.Range(0, d / 2).Select(i => Math.Pow(_c.RopeTheta, -2.0 * i / d)).ToArray();
        if (_c.RopeScaling is { Kind: "llama3" } s)
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

    /// <summary>Rotates each pair (i, i + d/2) of one head's vector by position × frequency i.</summary>
    private void Rotate(double[] v, int offset, int position, double[] inv)
    {
        var half = _c.HeadDimension / 2;
        for (var i = 0; i < half; i++)
        {
            var (cos, sin) = (Math.Cos(position * inv[i]), Math.Sin(position * inv[i]));
            var (a, b) = (v[offset + i], v[offset + i + half]);
            v[offset + i] = a * cos - b * sin;
            v[offset + i + half] = b * cos + a * sin;
        }
    }

    private double[][] Attention(double[][] x, string prefix, int? window)
    {
        var (heads, kvHeads, d) = (_c.NumAttentionHeads, _c.KeyValueHeads, _c.HeadDimension);
        var inv = InverseFrequencies();
        var q = x.Select(r => Linear(r, prefix + "q_proj")).ToArray();
        var k = x.Select(r => Linear(r, prefix + "k_proj")).ToArray();
        var v = x.Select(r => Linear(r, prefix + "v_proj")).ToArray();
        for (var t = 0; t < x.Length; t++)
        {
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
                    scores[s - first] = dot / Math.Sqrt(d);
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
        return Linear(g.Select((e, i) => e / (1 + Math.Exp(-e)) * u[i]).ToArray(), down);
    }

    private double[] Moe(double[] x, string prefix)
    {
        var logits = Linear(x, prefix + "gate");
        var max = logits.Max();
        var probabilities = logits.Select(e => Math.Exp(e - max)).ToArray();
        var chosen = Enumerable.Range(0, logits.Length).OrderByDescending(e => probabilities[e]).Take(_c.ExpertsPerToken).ToList();
        var norm = chosen.Sum(e => probabilities[e]);
        var result = new double[x.Length];
        foreach (var e in chosen)
        {
            var expert = Mlp(x, $"{prefix}experts.{e}.w1", $"{prefix}experts.{e}.w3", $"{prefix}experts.{e}.w2");
            for (var i = 0; i < result.Length; i++)
                result[i] += probabilities[e] / norm * expert[i];
        }

        return result;
    }

    private static double[] Add(double[] a, double[] b) => a.Select((e, i) => e + b[i]).ToArray();
}
