using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Adapters;

/// <summary>
/// What every LoRA adapter shares: rank, alpha, the scaling applied once (at run time, or folded
/// into the base weight by a merge), and merging its dense update in and out of that weight.
/// </summary>
public abstract class LoraUpdate
{
    /// <param name="rank">r.</param>
    /// <param name="alpha">lora_alpha.</param>
    /// <param name="rsLora">Scale by alpha/√r (rank-stabilised LoRA) instead of alpha/r.</param>
    protected LoraUpdate(int rank, double alpha, bool rsLora)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rank, 1);
        Rank = rank;
        Alpha = alpha;
        Scaling = rsLora ? alpha / Math.Sqrt(rank) : alpha / rank;
    }

    public int Rank { get; }

    public double Alpha { get; }

    /// <summary><c>alpha / r</c> (or <c>alpha / √r</c> with rsLoRA), applied once: at run time, or when merging.</summary>
    public double Scaling { get; }

    /// <summary>Whether the update is currently folded into the base weight.</summary>
    public bool Merged { get; private set; }

    /// <summary>The dense update in the base weight's layout, in float32 (float64 for float64 factors).</summary>
    public Tensor DeltaWeight() => DeltaWeight(Arithmetic(FactorType));

    /// <summary>The dense update in the base weight's layout, computed in <paramref name="dtype"/> (float64: an export's merge, rounded once).</summary>
    public abstract Tensor DeltaWeight(ScalarType dtype);

    /// <summary>Element type of the factors.</summary>
    protected abstract ScalarType FactorType { get; }

    /// <summary>Folds the update into <paramref name="weight"/> (W ← W + ΔW).</summary>
    public void MergeInto(Tensor weight)
    {
        if (Merged)
            throw new InvalidOperationException("LoRA update is already merged");
        Apply(weight, +1);
        Merged = true;
    }

    /// <summary>Takes the update back out of <paramref name="weight"/> (W ← W − ΔW).</summary>
    public void UnmergeFrom(Tensor weight)
    {
        if (!Merged)
            throw new InvalidOperationException("LoRA update is not merged");
        Apply(weight, -1);
        Merged = false;
    }

    /// <summary>float32 for half types and float32, float64 for float64.</summary>
    protected static ScalarType Arithmetic(ScalarType dtype) => dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    private void Apply(Tensor weight, int sign)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var updated = weight.to_type(Arithmetic(weight.dtype)) + DeltaWeight().to_type(Arithmetic(weight.dtype)) * sign;
        weight.copy_(updated.to_type(weight.dtype));
    }
}
