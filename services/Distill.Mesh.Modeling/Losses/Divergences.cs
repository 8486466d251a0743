using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Losses;

/// <summary>
/// The divergences between two distributions given as log-probabilities over their last dimension
/// (the whole vocabulary, or buckets of a sparse signal). Terms where a probability is 0 count 0,
/// so masked (−∞) logits never produce NaN.
/// </summary>
public static class Divergences
{
    /// <summary>Per-row divergence [N] of teacher log p and student log q, both [N, K].</summary>
    public static Tensor PerRow(Tensor logP, Tensor logQ, DistillationLossOptions options)
    {
        using var scope = torch.NewDisposeScope();
        var result = options.Kind switch
        {
            DivergenceKind.ForwardKl => Kl(logP, logQ),
            DivergenceKind.ForwardKlCrossEntropy => CrossEntropy(logP, logQ),
            DivergenceKind.ReverseKl => Kl(logQ, logP),
            DivergenceKind.SymmetricKl => options.SymmetricRatio * Kl(logP, logQ) + (1 - options.SymmetricRatio) * Kl(logQ, logP),
            DivergenceKind.GeneralizedJsd => Jsd(logP, logQ, options.Beta),
            DivergenceKind.SkewForwardKl => Kl(logP, Mix(logP, logQ, options.Alpha)),
            DivergenceKind.SkewReverseKl => Kl(logQ, Mix(logP, logQ, 1 - options.Alpha)),
            DivergenceKind.TotalVariation => 0.5 * (logP.exp() - logQ.exp()).abs().sum(-1),
            DivergenceKind.LogitMse => throw new ArgumentException("logit MSE compares raw logits, not distributions"),
            _ => throw new ArgumentOutOfRangeException(nameof(options)),
        };
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>KL(a‖b) = Σ a (log a − log b), with 0·log 0 = 0.</summary>
    public static Tensor Kl(Tensor logA, Tensor logB)
    {
        using var scope = torch.NewDisposeScope();
        var a = logA.exp();
        var terms = torch.where(a > 0, a * (logA - logB), torch.zeros_like(a));
        return terms.sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>−Σ a log b, with terms where a = 0 counted 0.</summary>
    public static Tensor CrossEntropy(Tensor logA, Tensor logB)
    {
        using var scope = torch.NewDisposeScope();
        var a = logA.exp();
        var terms = torch.where(a > 0, -a * logB, torch.zeros_like(a));
        return terms.sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>log(w·a + (1 − w)·b), computed in log space.</summary>
    public static Tensor Mix(Tensor logA, Tensor logB, double w)
    {
        if (w <= 0)
            return logB;
        if (w >= 1)
            return logA;
        return torch.logaddexp(logA + Math.Log(w), logB + Math.Log(1 - w));
    }

    /// <summary>Generalized JSD with TRL's end points: β = 0 is KL(p‖q), β = 1 is KL(q‖p).</summary>
    public static Tensor Jsd(Tensor logP, Tensor logQ, double beta)
    {
        if (beta == 0)
            return Kl(logP, logQ);
        if (beta == 1)
            return Kl(logQ, logP);
        using var scope = torch.NewDisposeScope();
        var logM = Mix(logP, logQ, beta);
        return (beta * Kl(logP, logM) + (1 - beta) * Kl(logQ, logM)).MoveToOuterDisposeScope();
    }
}
