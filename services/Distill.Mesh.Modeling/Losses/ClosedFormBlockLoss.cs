using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Losses;

/// <summary>
/// One block of the chunked loss with its gradient written out instead of taken by autograd, for
/// the cases whose gradient is short: hard-label cross-entropy alone, or mixed with forward KL
/// (either form) against dense teacher logits. With q = softmax(z), q_T = softmax(z / T),
/// p = softmax(z_T / T) and s = T² (when scaled) or 1:
/// ∂CE/∂z = q − onehot(label), ∂KL(p‖q_T)/∂z = ∂(−Σ p log q_T)/∂z = s·(q_T − p) / T.
/// The values are the same expressions as <see cref="DistillationLoss"/>'s; the gradient needs no
/// graph and a third of the block-sized passes autograd makes.
/// </summary>
internal static class ClosedFormBlockLoss
{
    /// <summary>Whether this block's target and loss have the written-out gradient.</summary>
    public static bool Supports(TeacherTarget? target, DistillationLossOptions options) =>
        target is null || (target is DenseTeacherLogits && options.Kind is DivergenceKind.ForwardKl or DivergenceKind.ForwardKlCrossEntropy);

    /// <param name="logits">Student logits of the block [B, V] in the accumulation dtype (float32 or float64).</param>
    /// <param name="labels">[B], ignore_index where no loss is taken.</param>
    /// <param name="valid">[B], labels ≠ ignore_index.</param>
    /// <param name="target">Dense teacher logits of the block, or null for cross-entropy only.</param>
    /// <param name="options">Loss options.</param>
    /// <param name="ratio">kd_ratio (0 without a teacher).</param>
    /// <param name="denominator">The step's normaliser.</param>
    /// <returns>∂loss/∂logits [B, V], and the block's KD and CE sums (before the normaliser).</returns>
    public static (Tensor GradLogits, double Kd, double Ce) Compute(Tensor logits, Tensor labels, Tensor valid, TeacherTarget? target, DistillationLossOptions options, double ratio, double denominator)
    {
        using var scope = torch.NewDisposeScope();
        var logQ = logits.log_softmax(-1);
        var safe = torch.where(valid, labels, torch.zeros_like(labels)).unsqueeze(-1);
        var ce = torch.where(valid, -logQ.gather(-1, safe).squeeze(-1), torch.zeros_like(valid, dtype: logits.dtype)).sum();
        // (1 − r)·(q − onehot) for the hard labels; invalid rows are zeroed at the end.
        var grad = logQ.exp().mul_(1 - ratio);
        grad.scatter_add_(-1, safe, torch.full_like(safe, ratio - 1, dtype: logits.dtype));
        var kd = 0.0;
        if (target is DenseTeacherLogits dense)
        {
            var teacherLogits = dense.Logits.to_type(logits.dtype);
            if (teacherLogits.shape[^1] != logits.shape[^1])
                throw new ArgumentException($"teacher vocabulary {teacherLogits.shape[^1]} ≠ student vocabulary {logits.shape[^1]}; slice padded rows first");
            var temperature = options.Temperature;
            var scale = options.ScaleByTemperatureSquared ? temperature * temperature : 1.0;
            var logP = (temperature == 1 ? teacherLogits : teacherLogits / temperature).log_softmax(-1);
            var logQt = temperature == 1 ? logQ : (logits / temperature).log_softmax(-1);
            var perRow = options.Kind == DivergenceKind.ForwardKl ? Divergences.Kl(logP, logQt) : Divergences.CrossEntropy(logP, logQt);
            kd = torch.where(valid, perRow * scale, torch.zeros_like(perRow)).sum().to_type(ScalarType.Float64).item<double>();
            var weight = ratio * scale / temperature;
            grad.add_(temperature == 1 ? logQ.exp() : logQt.exp(), alpha: weight).add_(logP.exp(), alpha: -weight);
        }

        grad.mul_((valid.to_type(logits.dtype) / denominator).unsqueeze(-1));
        return (grad.MoveToOuterDisposeScope(), kd, ce.to_type(ScalarType.Float64).item<double>());
    }
}
