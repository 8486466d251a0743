using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Losses;

/// <summary>The teacher's target for a block of positions, produced on demand (so a block at a time).</summary>
public interface ITeacherRows
{
    /// <summary>Positions covered.</summary>
    long Rows { get; }

    /// <summary>The target of positions [start, start + length).</summary>
    TeacherTarget Block(long start, long length);
}

/// <summary>Blocks of an existing target (dense logits, top-k or sampled signal).</summary>
public sealed class TargetRows(TeacherTarget target) : ITeacherRows
{
    public long Rows => target.Rows;

    public TeacherTarget Block(long start, long length) => target.Slice(start, length);
}

/// <summary>
/// The teacher's logits computed block by block from its final hidden states [N, H_T] and output
/// weight [V, H_T], so the teacher's [N × V] logits never exist whole either. The weight may be a
/// narrowed view (a padded vocabulary sliced to the ids both models share).
/// </summary>
public sealed class ProjectedTeacherRows(Tensor hidden, Tensor outputWeight) : ITeacherRows
{
    public long Rows => hidden.shape[0];

    public TeacherTarget Block(long start, long length)
    {
        using var noGrad = torch.no_grad();
        return new DenseTeacherLogits(hidden.narrow(0, start, length).matmul(outputWeight.t()));
    }
}
