using Distill.Mesh.Modeling.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Extraction;

/// <summary>
/// Phi-3's fused weights, <c>self_attn.qkv_proj</c> (query, key, value rows) and
/// <c>mlp.gate_up_proj</c> (gate, up rows), projected part by part into another size: a projection
/// of the whole matrix would mix the queries with the keys, or the gate with the up projection.
/// </summary>
internal static class FusedProjections
{
    private const string QkvSuffix = ".self_attn.qkv_proj.weight";
    private const string GateUpSuffix = ".mlp.gate_up_proj.weight";

    /// <summary>
    /// The row counts of a fused weight's parts in <paramref name="checkpoint"/>, or null for a weight
    /// that is not fused. The query rows of qkv_proj are o_proj's input width; key and value share the rest.
    /// </summary>
    public static long[]? RowBlocks(string name, SafetensorsCheckpoint checkpoint)
    {
        if (!checkpoint.Contains(name))
            return null;
        var rows = checkpoint.GetInfo(name).Shape[0];
        if (name.EndsWith(GateUpSuffix, StringComparison.Ordinal))
            return rows % 2 == 0 ? [rows / 2, rows / 2] : null;
        if (!name.EndsWith(QkvSuffix, StringComparison.Ordinal))
            return null;
        var output = name[..^QkvSuffix.Length] + ".self_attn.o_proj.weight";
        if (!checkpoint.Contains(output))
            return null;
        var query = checkpoint.GetInfo(output).Shape[1];
        var keyValue = rows - query;
        return keyValue > 0 && keyValue % 2 == 0 ? [query, keyValue / 2, keyValue / 2] : null;
    }

    /// <summary>Projects each teacher part into the student part's shape and stacks them again; null when the parts do not pair up.</summary>
    public static (Tensor Projected, ProjectionMethod Method)? Project(Tensor teacher, long[] teacherBlocks, long[] studentBlocks, long studentColumns)
    {
        if (teacherBlocks.Length != studentBlocks.Length || teacher.shape[0] != teacherBlocks.Sum())
            return null;
        var parts = new List<Tensor>();
        var methods = new List<ProjectionMethod>();
        long row = 0;
        for (var i = 0; i < teacherBlocks.Length; i++)
        {
            var (part, method) = ShapeProjector.Project(teacher.narrow(0, row, teacherBlocks[i]), [studentBlocks[i], studentColumns]);
            parts.Add(part);
            methods.Add(method);
            row += teacherBlocks[i];
        }

        // The report names one method: the fallback if any part needed it.
        return (torch.cat(parts, 0), methods.Max());
    }
}
