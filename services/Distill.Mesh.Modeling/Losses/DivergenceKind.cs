namespace Distill.Mesh.Modeling.Losses;

/// <summary>The soft-target losses between teacher p and student q (see KD-NOTES.md for conventions).</summary>
public enum DivergenceKind
{
    /// <summary>KL(p‖q) = Σ p (log p − log q): the true KL, 0 when q = p.</summary>
    ForwardKl,

    /// <summary>−Σ p log q = KL(p‖q) + H(p): torchtune's / DistiLLM's "forward KL" (same gradient).</summary>
    ForwardKlCrossEntropy,

    /// <summary>KL(q‖p) = Σ q (log q − log p).</summary>
    ReverseKl,

    /// <summary>r·KL(p‖q) + (1 − r)·KL(q‖p), r on the forward term (torchtune's convention).</summary>
    SymmetricKl,

    /// <summary>β·KL(p‖M) + (1 − β)·KL(q‖M), M = βp + (1 − β)q; β = 0 is forward KL, β = 1 reverse KL (TRL).</summary>
    GeneralizedJsd,

    /// <summary>KL(p ‖ αp + (1 − α)q) (DistiLLM).</summary>
    SkewForwardKl,

    /// <summary>KL(q ‖ (1 − α)p + αq) (DistiLLM).</summary>
    SkewReverseKl,

    /// <summary>½ Σ |p − q|.</summary>
    TotalVariation,

    /// <summary>Mean over the vocabulary of (z_S − z_T)², on raw logits (no temperature).</summary>
    LogitMse,
}

/// <summary>Short names used in configs and on the command line.</summary>
public static class DivergenceNames
{
    public static readonly IReadOnlyDictionary<string, DivergenceKind> ByName = new Dictionary<string, DivergenceKind>(StringComparer.OrdinalIgnoreCase)
    {
        ["fkl"] = DivergenceKind.ForwardKl,
        ["fkl-ce"] = DivergenceKind.ForwardKlCrossEntropy,
        ["rkl"] = DivergenceKind.ReverseKl,
        ["sym"] = DivergenceKind.SymmetricKl,
        ["jsd"] = DivergenceKind.GeneralizedJsd,
        ["skl"] = DivergenceKind.SkewForwardKl,
        ["srkl"] = DivergenceKind.SkewReverseKl,
        ["tvd"] = DivergenceKind.TotalVariation,
        ["mse"] = DivergenceKind.LogitMse,
    };

    public static DivergenceKind Parse(string name) =>
        ByName.TryGetValue(name, out var kind)
            ? kind
            : throw new ArgumentException($"unknown loss '{name}' (known: {string.Join(", ", ByName.Keys)})");

    public static string NameOf(DivergenceKind kind) => ByName.First(kv => kv.Value == kind).Key;
}
