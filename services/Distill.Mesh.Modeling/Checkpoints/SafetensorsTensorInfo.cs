namespace Distill.Mesh.Modeling.Checkpoints;

/// <summary>One tensor's entry in a safetensors header. Offsets are relative to the data section.</summary>
public sealed record SafetensorsTensorInfo(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (1 for a scalar, 0 when any dimension is 0).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>Bytes of data.</summary>
    public long ByteLength => End - Begin;

    public override string ToString() => $"{Name} {DType}[{string.Join(", ", Shape)}]";
}
