using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Losses;

/// <summary>The teacher's signal for N positions, dense or sparse. Rows align with the student's positions.</summary>
public abstract record TeacherTarget
{
    /// <summary>Positions covered.</summary>
    public abstract long Rows { get; }

    /// <summary>The rows [start, start + length).</summary>
    public abstract TeacherTarget Slice(long start, long length);

    /// <summary>Where the target's tensors are.</summary>
    public Device Device => Tensors.First()!.device;

    /// <summary>The tensors the target holds.</summary>
    protected abstract IEnumerable<Tensor?> Tensors { get; }

    /// <summary>Frees the target's tensors.</summary>
    public void DisposeTensors()
    {
        foreach (var tensor in Tensors)
            tensor?.Dispose();
    }

    /// <summary>A copy whose tensors are its own (a slice of a batch's rows outlives the batch).</summary>
    public TeacherTarget Copy() => this switch
    {
        DenseTeacherLogits d => new DenseTeacherLogits(d.Logits.clone()),
        TopKTeacherSignal t => new TopKTeacherSignal(t.Ids.clone(), t.LogProbs.clone(), t.Mode, t.TailMass?.clone()),
        SampledTeacherSignal s => new SampledTeacherSignal(s.Ids.clone(), s.Weights.clone(), s.LogProbs.clone()),
        _ => throw new InvalidOperationException($"cannot copy {GetType().Name}"),
    };

    /// <summary>The target on <paramref name="device"/> (the same tensors when they are there already).</summary>
    public TeacherTarget To(Device device) => this switch
    {
        DenseTeacherLogits d => new DenseTeacherLogits(d.Logits.to(device)),
        TopKTeacherSignal t => new TopKTeacherSignal(t.Ids.to(device), t.LogProbs.to(device), t.Mode, t.TailMass?.to(device)),
        SampledTeacherSignal s => new SampledTeacherSignal(s.Ids.to(device), s.Weights.to(device), s.LogProbs.to(device)),
        _ => throw new InvalidOperationException($"cannot move {GetType().Name}"),
    };

    /// <summary>Takes the target's tensors out of the current dispose scope (the target then owns them).</summary>
    public TeacherTarget Detached()
    {
        foreach (var tensor in Tensors)
            tensor?.DetachFromDisposeScope();
        return this;
    }
}

/// <summary>Full teacher logits [N, V] (raw, before temperature).</summary>
public sealed record DenseTeacherLogits(Tensor Logits) : TeacherTarget
{
    public override long Rows => Logits.shape[0];

    public override TeacherTarget Slice(long start, long length) => new DenseTeacherLogits(Logits.narrow(0, start, length));

    protected override IEnumerable<Tensor?> Tensors => [Logits];
}

/// <summary>How a top-k signal treats the mass outside the k tokens.</summary>
public enum TopKMode
{
    /// <summary>Renormalise the teacher over its k tokens; forward KL against the student's full softmax. Biased.</summary>
    Zero,

    /// <summary>k tokens plus one bucket for the rest (teacher 1 − Σp, student 1 − Σq). Exact as k → V.</summary>
    Tail,
}

/// <summary>
/// The teacher's k most likely tokens per position: ids [N, k] and their log-probabilities [N, k]
/// at the distillation temperature. The tail mass is 1 − Σ exp(log-probs) unless given (a
/// quantised signal may carry it explicitly).
/// </summary>
public sealed record TopKTeacherSignal(Tensor Ids, Tensor LogProbs, TopKMode Mode, Tensor? TailMass = null) : TeacherTarget
{
    public override long Rows => Ids.shape[0];

    public override TeacherTarget Slice(long start, long length) =>
        new TopKTeacherSignal(Ids.narrow(0, start, length), LogProbs.narrow(0, start, length), Mode, TailMass?.narrow(0, start, length));

    protected override IEnumerable<Tensor?> Tensors => [Ids, LogProbs, TailMass];

    /// <summary>Top-k of full teacher logits at temperature <paramref name="temperature"/>.</summary>
    public static TopKTeacherSignal FromLogits(Tensor logits, int k, double temperature, TopKMode mode)
    {
        using var scope = torch.NewDisposeScope();
        var logProbs = (logits.AtLeastFloat32() / temperature).log_softmax(-1);
        var (values, ids) = logProbs.topk(k, dim: -1);
        return new TopKTeacherSignal(ids.MoveToOuterDisposeScope(), values.MoveToOuterDisposeScope(), mode);
    }
}

/// <summary>
/// Tokens sampled per position, ids [N, s], with importance weights [N, s] and the teacher's
/// log-probabilities of those tokens [N, s]. With v ~ r and w = p(v) / (r(v)·s), Σ w·f(v) is an
/// unbiased estimate of Σ_v p(v)·f(v), so the forward-KL loss and its gradient are unbiased.
/// </summary>
public sealed record SampledTeacherSignal(Tensor Ids, Tensor Weights, Tensor LogProbs) : TeacherTarget
{
    public override long Rows => Ids.shape[0];

    public override TeacherTarget Slice(long start, long length) =>
        new SampledTeacherSignal(Ids.narrow(0, start, length), Weights.narrow(0, start, length), LogProbs.narrow(0, start, length));

    protected override IEnumerable<Tensor?> Tensors => [Ids, Weights, LogProbs];

    /// <summary>Draws <paramref name="samples"/> tokens per position from the teacher itself (r = p, w = 1/s).</summary>
    public static SampledTeacherSignal FromLogits(Tensor logits, int samples, double temperature, Generator generator)
    {
        using var scope = torch.NewDisposeScope();
        var logProbs = (logits.AtLeastFloat32() / temperature).log_softmax(-1);
        var ids = torch.multinomial(logProbs.exp(), samples, replacement: true, generator: generator);
        var weights = torch.full(ids.shape, 1.0 / samples, dtype: logProbs.dtype, device: ids.device);
        var picked = logProbs.gather(-1, ids);
        return new SampledTeacherSignal(ids.MoveToOuterDisposeScope(), weights.MoveToOuterDisposeScope(), picked.MoveToOuterDisposeScope());
    }
}
