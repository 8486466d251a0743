using Distill.Mesh.Modeling.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>
/// Rotary position embeddings in HF's "rotate_half" layout, with the default, linear and Llama 3
/// frequency scalings. Holds no parameters (HF's <c>inv_freq</c> is a non-persistent buffer).
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly double[] _inverseFrequencies;

    /// <param name="config">The model's config.</param>
    /// <param name="localTheta">A local base (Gemma 3's sliding layers), used unscaled; null for the config's rope_theta and rope_scaling.</param>
    public RotaryEmbedding(DecoderConfig config, double? localTheta = null)
    {
        var dim = config.RotaryDimension;
        var theta = localTheta ?? config.RopeTheta;
        _inverseFrequencies = new double[dim / 2];
        for (var i = 0; i < dim / 2; i++)
            _inverseFrequencies[i] = 1.0 / Math.Pow(theta, 2.0 * i / dim);
        if (localTheta is null && config.RopeScaling is { } scaling)
            Scale(_inverseFrequencies, scaling);
    }

    /// <summary>The (scaled) inverse frequencies, one per pair of head dimensions.</summary>
    public IReadOnlyList<double> InverseFrequencies => _inverseFrequencies;

    private static void Scale(double[] invFreq, RopeScaling scaling)
    {
        switch (scaling.Kind)
        {
            case "linear":
                for (var i = 0; i < invFreq.Length; i++)
                    invFreq[i] /= scaling.Factor;
                break;
            case "llama3":
                // Long wavelengths are slowed by `factor`, short ones kept, the band between blended.
                var oldContext = (double)scaling.OriginalMaxPositionEmbeddings!.Value;
                var low = scaling.LowFreqFactor!.Value;
                var high = scaling.HighFreqFactor!.Value;
                var lowFreqWavelength = oldContext / low;
                var highFreqWavelength = oldContext / high;
                for (var i = 0; i < invFreq.Length; i++)
                {
                    var wavelength = 2 * Math.PI / invFreq[i];
                    if (wavelength > lowFreqWavelength)
                    {
                        invFreq[i] /= scaling.Factor;
                    }
                    else if (wavelength >= highFreqWavelength)
                    {
                        var smooth = (oldContext / wavelength - low) / (high - low);
                        invFreq[i] = (1 - smooth) * invFreq[i] / scaling.Factor + smooth * invFreq[i];
                    }
                }

                break;
        }
    }

    /// <summary>cos and sin tables for positions [B, T], each [B, 1, T, rotary dim], in <paramref name="dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) Tables(Tensor positionIds, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var invFreq = torch.tensor(_inverseFrequencies, dtype: ScalarType.Float32, device: positionIds.device);
        var freqs = positionIds.to_type(ScalarType.Float32).unsqueeze(-1) * invFreq;
        var emb = torch.cat([freqs, freqs], -1).unsqueeze(1);
        var cos = emb.cos().to_type(dtype);
        var sin = emb.sin().to_type(dtype);
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>Rotates [B, heads, T, head_dim] by the tables; with partial rotary, only the leading dimensions the tables cover.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        var rotated = cos.shape[^1];
        if (rotated < x.shape[^1])
        {
            using var partial = torch.NewDisposeScope();
            var turned = Apply(x.narrow(-1, 0, rotated), cos, sin);
            return torch.cat([turned, x.narrow(-1, rotated, x.shape[^1] - rotated)], -1).MoveToOuterDisposeScope();
        }

        using var scope = torch.NewDisposeScope();
        var half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var halfTurned = torch.cat([-x2, x1], -1);
        return (x * cos + halfTurned * sin).MoveToOuterDisposeScope();
    }
}
