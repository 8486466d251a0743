using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Losses;

/// <summary>Losses run in float32 at least: bf16/fp16 inputs are upcast, float64 is kept (for reference checks).</summary>
internal static class LossPrecision
{
    public static Tensor AtLeastFloat32(this Tensor t) => t.dtype == ScalarType.Float64 ? t : t.to_type(ScalarType.Float32);
}
