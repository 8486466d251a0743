namespace Distill.Mesh.Modeling.Losses;

/// <summary>How the distillation loss is computed.</summary>
public sealed record DistillationLossOptions
{
    public DivergenceKind Kind { get; init; } = DivergenceKind.ForwardKl;

    /// <summary>Both distributions are softmax(z / T).</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Multiply the soft loss by T² (Hinton) so gradient size does not depend on T.</summary>
    public bool ScaleByTemperatureSquared { get; init; }

    /// <summary>β of the generalized JSD.</summary>
    public double Beta { get; init; } = 0.5;

    /// <summary>α of the skew KLs.</summary>
    public double Alpha { get; init; } = 0.1;

    /// <summary>r of the symmetric KL: the weight of the forward term.</summary>
    public double SymmetricRatio { get; init; } = 0.5;

    /// <summary>Total = (1 − kd_ratio)·CE + kd_ratio·KD.</summary>
    public double KdRatio { get; init; } = 0.5;

    /// <summary>Label value of positions that take no loss.</summary>
    public long IgnoreIndex { get; init; } = -100;

    /// <summary>Throws naming the first value out of range.</summary>
    public void Validate()
    {
        if (!(Temperature > 0))
            throw new ArgumentException($"temperature must be > 0 (got {Temperature})");
        if (Beta is < 0 or > 1)
            throw new ArgumentException($"beta must be in [0, 1] (got {Beta})");
        if (Alpha is < 0 or > 1)
            throw new ArgumentException($"alpha must be in [0, 1] (got {Alpha})");
        if (SymmetricRatio is < 0 or > 1)
            throw new ArgumentException($"symmetric ratio must be in [0, 1] (got {SymmetricRatio})");
        if (KdRatio is < 0 or > 1)
            throw new ArgumentException($"kd_ratio must be in [0, 1] (got {KdRatio})");
    }
}
