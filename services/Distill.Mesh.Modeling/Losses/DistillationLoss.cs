using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Losses;

/// <summary>The parts of a loss: the mixed total, the distillation term and the hard-label term.</summary>
public sealed record LossParts(Tensor Total, Tensor Kd, Tensor Ce) : IDisposable
{
    public void Dispose()
    {
        Total.Dispose();
        Kd.Dispose();
        Ce.Dispose();
    }
}

/// <summary>
/// Distillation losses on aligned student logits [N, V] and teacher targets (shift for causal LM
/// before calling). Per-position values are summed over positions whose label is not
/// <c>ignore_index</c> and divided by <c>normalizer</c> — the valid tokens of the whole optimizer
/// step, so gradient-accumulation micro-batches weigh tokens equally. Softmax is in float32.
/// </summary>
public static class DistillationLoss
{
    /// <summary>Per-position distillation loss [N] (float32), T² applied when asked.</summary>
    public static Tensor PerPosition(Tensor studentLogits, TeacherTarget teacher, DistillationLossOptions options)
    {
        options.Validate();
        if (teacher.Rows != studentLogits.shape[0])
            throw new ArgumentException($"teacher covers {teacher.Rows} positions, student {studentLogits.shape[0]}");
        using var scope = torch.NewDisposeScope();
        var student = studentLogits.AtLeastFloat32();
        var values = teacher switch
        {
            DenseTeacherLogits dense => Dense(student, dense, options),
            TopKTeacherSignal topK => TopK(student, topK, options),
            SampledTeacherSignal sampled => Sampled(student, sampled, options),
            _ => throw new ArgumentException($"unknown teacher target {teacher.GetType().Name}"),
        };
        if (options.ScaleByTemperatureSquared && options.Kind != DivergenceKind.LogitMse)
            values = values * (options.Temperature * options.Temperature);
        return values.MoveToOuterDisposeScope();
    }

    /// <summary>Per-position hard-label cross-entropy [N] (0 at ignored positions), at temperature 1.</summary>
    public static Tensor HardCrossEntropy(Tensor studentLogits, Tensor labels, long ignoreIndex = -100)
    {
        using var scope = torch.NewDisposeScope();
        var logQ = studentLogits.AtLeastFloat32().log_softmax(-1);
        var valid = labels.ne(ignoreIndex);
        var safe = torch.where(valid, labels, torch.zeros_like(labels));
        var nll = -logQ.gather(-1, safe.unsqueeze(-1)).squeeze(-1);
        return torch.where(valid, nll, torch.zeros_like(nll)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// (1 − kd_ratio)·CE + kd_ratio·KD over the valid positions, each summed and divided by
    /// <paramref name="normalizer"/> (default: this batch's valid positions; 0 valid gives 0).
    /// </summary>
    public static LossParts Compute(Tensor studentLogits, TeacherTarget? teacher, Tensor labels, DistillationLossOptions options, double? normalizer = null)
    {
        using var scope = torch.NewDisposeScope();
        var valid = labels.ne(options.IgnoreIndex);
        var denominator = Math.Max(1.0, normalizer ?? valid.sum().item<long>());
        var ce = HardCrossEntropy(studentLogits, labels, options.IgnoreIndex).sum() / denominator;
        var kd = teacher is null
            ? torch.zeros_like(ce)
            : torch.where(valid, PerPosition(studentLogits, teacher, options), torch.zeros(1, device: studentLogits.device)).sum() / denominator;
        var ratio = teacher is null ? 0.0 : options.KdRatio;
        var total = (1 - ratio) * ce + ratio * kd;
        return new LossParts(total.MoveToOuterDisposeScope(), kd.MoveToOuterDisposeScope(), ce.MoveToOuterDisposeScope());
    }

    private static Tensor Dense(Tensor student, DenseTeacherLogits teacher, DistillationLossOptions options)
    {
        var teacherLogits = teacher.Logits.AtLeastFloat32().to_type(student.dtype);
        if (teacherLogits.shape[^1] != student.shape[^1])
            throw new ArgumentException($"teacher vocabulary {teacherLogits.shape[^1]} ≠ student vocabulary {student.shape[^1]}; slice padded rows first");
        if (options.Kind == DivergenceKind.LogitMse)
            return (student - teacherLogits).pow(2).mean([-1L]);
        var logP = (teacherLogits / options.Temperature).log_softmax(-1);
        var logQ = (student / options.Temperature).log_softmax(-1);
        return Divergences.PerRow(logP, logQ, options);
    }

    /// <summary>
    /// Tail mode compares k + 1 buckets: the k tokens and everything else. The student's tail is
    /// logsumexp over the tokens outside the top-k, so it is exact (no 1 − Σq cancellation).
    /// </summary>
    private static Tensor TopK(Tensor student, TopKTeacherSignal teacher, DistillationLossOptions options)
    {
        var logQAll = (student / options.Temperature).log_softmax(-1);
        var logQ = logQAll.gather(-1, teacher.Ids);
        var logP = teacher.LogProbs.to_type(student.dtype);
        if (teacher.Mode == TopKMode.Zero)
        {
            if (options.Kind is not (DivergenceKind.ForwardKl or DivergenceKind.ForwardKlCrossEntropy))
                throw new ArgumentException("top-k 'zero' targets support only forward KL (fkl, fkl-ce); use tail mode for other losses");
            var renormalized = logP - logP.logsumexp(-1, keepdim: true);
            return options.Kind == DivergenceKind.ForwardKl ? Divergences.Kl(renormalized, logQ) : Divergences.CrossEntropy(renormalized, logQ);
        }

        if (options.Kind == DivergenceKind.LogitMse)
            throw new ArgumentException("logit MSE needs the teacher's full logits, not a top-k signal");
        if (teacher.Ids.shape[^1] == student.shape[^1])
            return Divergences.PerRow(logP, logQ, options); // k = V: nothing outside, no tail bucket
        var outside = logQAll.scatter(-1, teacher.Ids, torch.full_like(logQ, double.NegativeInfinity));
        var logQTail = outside.logsumexp(-1, keepdim: true);
        var pTail = teacher.TailMass?.to_type(student.dtype).unsqueeze(-1)
            ?? (1 - logP.exp().sum(-1, keepdim: true)).clamp_min(0);
        var logPTail = pTail.log();
        return Divergences.PerRow(torch.cat([logP, logPTail], -1), torch.cat([logQ, logQTail], -1), options);
    }

    private static Tensor Sampled(Tensor student, SampledTeacherSignal teacher, DistillationLossOptions options)
    {
        if (options.Kind is not (DivergenceKind.ForwardKl or DivergenceKind.ForwardKlCrossEntropy))
            throw new ArgumentException("sampled targets estimate forward KL only (fkl, fkl-ce): the other losses are not linear in p");
        var logQ = (student / options.Temperature).log_softmax(-1).gather(-1, teacher.Ids);
        var weights = teacher.Weights.to_type(student.dtype);
        var logP = teacher.LogProbs.to_type(student.dtype);
        var terms = options.Kind == DivergenceKind.ForwardKl ? logP - logQ : -logQ;
        return (weights * terms).sum(-1);
    }
}
