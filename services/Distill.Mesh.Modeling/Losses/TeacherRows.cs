using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Losses;

/// <summary>
/// The teacher's target for a block of positions, produced on demand (so a block at a time).
/// Disposing frees the tensors the rows own (not those a caller lent them).
/// </summary>
public interface ITeacherRows : IDisposable
{
    /// <summary>Positions covered.</summary>
    long Rows { get; }

    /// <summary>The target of positions [start, start + length).</summary>
    TeacherTarget Block(long start, long length);
}

/// <summary>Blocks of an existing target (dense logits, top-k or sampled signal).</summary>
/// <param name="target">The target.</param>
/// <param name="owns">Dispose the target's tensors with the rows.</param>
public sealed class TargetRows(TeacherTarget target, bool owns = false) : ITeacherRows
{
    public long Rows => target.Rows;

    public TeacherTarget Block(long start, long length) => target.Slice(start, length);

    public void Dispose()
    {
        if (owns)
            target.DisposeTensors();
    }
}

/// <summary>
/// The teacher's logits computed block by block from its final hidden states [N, H_T] and output
/// weight [V, H_T], so the teacher's [N × V] logits never exist whole either. The weight may be a
/// narrowed view (a padded vocabulary sliced to the ids both models share).
/// </summary>
/// <param name="hidden">Teacher final hidden states [N, H_T].</param>
/// <param name="outputWeight">Teacher output weight [V, H_T], usually a narrowed view.</param>
/// <param name="owns">Dispose the hidden states and the weight handle with the rows (pass a view
/// of the weight then, never the parameter itself: disposing a view leaves the weight intact).</param>
/// <param name="softcap">The teacher's final logit soft-capping (Gemma 2: logits c·tanh(z / c)), or null.</param>
public sealed class ProjectedTeacherRows(Tensor hidden, Tensor outputWeight, bool owns = false, double? softcap = null) : ITeacherRows
{
    public long Rows => hidden.shape[0];

    public TeacherTarget Block(long start, long length)
    {
        using var noGrad = torch.no_grad();
        var logits = hidden.narrow(0, start, length).matmul(outputWeight.t());
        return new DenseTeacherLogits(softcap is { } cap ? Models.CausalLanguageModel.SoftCap(logits, cap) : logits);
    }

    public void Dispose()
    {
        if (!owns)
            return;
        hidden.Dispose();
        outputWeight.Dispose();
    }
}

/// <summary>
/// Rows of a teacher on another device (a teacher on its own GPU, or a remote teacher decoded on
/// the CPU), moved to the student's device a block at a time as the loss asks for them.
/// </summary>
/// <param name="rows">The teacher's rows (owned: disposed with these).</param>
/// <param name="device">The student's device.</param>
public sealed class DeviceRows(ITeacherRows rows, Device device) : ITeacherRows
{
    public long Rows => rows.Rows;

    public Device Device => device;

    public TeacherTarget Block(long start, long length) => rows.Block(start, length).To(device);

    public void Dispose() => rows.Dispose();
}
