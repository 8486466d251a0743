using System.Buffers.Binary;
using System.IO.Hashing;

namespace Distill.Mesh.Training.Metrics;

/// <summary>
/// TFRecord framing, the container of TensorBoard event files: per record the length (uint64 LE),
/// the masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data.
/// </summary>
public sealed class TfRecordWriter(Stream stream) : IDisposable
{
    /// <summary>Appends one record and pushes it to the OS (so a watching TensorBoard sees it).</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], MaskedCrc(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, MaskedCrc(data));
        stream.Write(header);
        stream.Write(data);
        stream.Write(footer);
        stream.Flush();
    }

    /// <summary>TFRecord's checksum: CRC-32C rotated right by 15 bits plus 0xa282ead8.</summary>
    public static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        var crc = Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, data);
        return unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);
    }

    public void Dispose() => stream.Dispose();
}
