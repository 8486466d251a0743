using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Checkpoints;

/// <summary>Element types of the safetensors format, spelled as in its header.</summary>
public enum SafetensorsDType
{
    BOOL,
    U8,
    I8,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    I64,
    U64,
    F64,
    F8_E4M3,
    F8_E5M2,
}

/// <summary>Sizes, names and torch equivalents of <see cref="SafetensorsDType"/>.</summary>
public static class SafetensorsDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.BOOL or SafetensorsDType.U8 or SafetensorsDType.I8
            or SafetensorsDType.F8_E4M3 or SafetensorsDType.F8_E5M2 => 1,
        SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.F16 or SafetensorsDType.BF16 => 2,
        SafetensorsDType.I32 or SafetensorsDType.U32 or SafetensorsDType.F32 => 4,
        SafetensorsDType.I64 or SafetensorsDType.U64 or SafetensorsDType.F64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    private static readonly Dictionary<string, SafetensorsDType> ByName = Enum.GetValues<SafetensorsDType>().ToDictionary(d => d.ToString(), StringComparer.Ordinal);

    /// <summary>
    /// Parses a header dtype string: exactly one of the format's names (Enum.TryParse would take
    /// " F32", "+9" or "U8,U32" as F32).
    /// </summary>
    public static bool TryParse(string text, out SafetensorsDType dtype) => ByName.TryGetValue(text, out dtype);

    /// <summary>The torch element type for a safetensors dtype.</summary>
    /// <exception cref="NotSupportedException">The dtype has no torch counterpart in TorchSharp.</exception>
    public static ScalarType ToScalarType(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.BOOL => ScalarType.Bool,
        SafetensorsDType.U8 => ScalarType.Byte,
        SafetensorsDType.I8 => ScalarType.Int8,
        SafetensorsDType.I16 => ScalarType.Int16,
        SafetensorsDType.F16 => ScalarType.Float16,
        SafetensorsDType.BF16 => ScalarType.BFloat16,
        SafetensorsDType.I32 => ScalarType.Int32,
        SafetensorsDType.F32 => ScalarType.Float32,
        SafetensorsDType.I64 => ScalarType.Int64,
        SafetensorsDType.F64 => ScalarType.Float64,
        _ => throw new NotSupportedException(
            $"safetensors dtype {dtype} has no TorchSharp tensor type; it can be listed but not loaded"),
    };

    /// <summary>The safetensors dtype for a torch element type.</summary>
    public static SafetensorsDType FromScalarType(ScalarType type) => type switch
    {
        ScalarType.Bool => SafetensorsDType.BOOL,
        ScalarType.Byte => SafetensorsDType.U8,
        ScalarType.Int8 => SafetensorsDType.I8,
        ScalarType.Int16 => SafetensorsDType.I16,
        ScalarType.Float16 => SafetensorsDType.F16,
        ScalarType.BFloat16 => SafetensorsDType.BF16,
        ScalarType.Int32 => SafetensorsDType.I32,
        ScalarType.Float32 => SafetensorsDType.F32,
        ScalarType.Int64 => SafetensorsDType.I64,
        ScalarType.Float64 => SafetensorsDType.F64,
        _ => throw new NotSupportedException($"torch dtype {type} cannot be stored in safetensors"),
    };
}
