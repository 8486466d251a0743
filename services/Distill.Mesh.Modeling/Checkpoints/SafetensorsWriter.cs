using Distill.Mesh.Specs.Storage;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Checkpoints;

/// <summary>
/// Writes safetensors files atomically: to a temporary file beside the target, flushed to disk,
/// then renamed over it. Tensors are streamed one at a time from their own memory.
/// </summary>
public static unsafe class SafetensorsWriter
{
    private const int WriteBlock = 16 << 20;

    /// <summary>Writes <paramref name="tensors"/> (in the given order) to <paramref name="path"/>.</summary>
    public static void Write(
        string path,
        IReadOnlyList<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = BuildHeader(tensors, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            stream.Write(prefix);
            stream.Write(header);
            foreach (var (_, tensor) in tensors)
                WriteData(stream, tensor);
        });
    }

    /// <summary>Total bytes of tensor data (what sharding budgets against).</summary>
    public static long DataBytes(Tensor tensor) => TensorMemory.ByteLength(tensor);

    private static byte[] BuildHeader(IReadOnlyList<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata)
                    json.WriteString(key, value);
                json.WriteEndObject();
            }

            var names = new HashSet<string>(StringComparer.Ordinal);
            long offset = 0;
            foreach (var (name, tensor) in tensors)
            {
                if (name == "__metadata__" || !names.Add(name))
                    throw new ArgumentException($"tensor name '{name}' is duplicated or reserved", nameof(tensors));
                var length = TensorMemory.ByteLength(tensor);
                json.WriteStartObject(name);
                json.WriteString("dtype", SafetensorsDTypes.FromScalarType(tensor.dtype).ToString());
                json.WriteStartArray("shape");
                foreach (var dim in tensor.shape)
                    json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += length;
            }

            json.WriteEndObject();
        }

        // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
        var padded = (buffer.Length + 7) / 8 * 8;
        var bytes = new byte[padded];
        buffer.ToArray().CopyTo(bytes, 0);
        Array.Fill(bytes, (byte)' ', (int)buffer.Length, (int)(padded - buffer.Length));
        return bytes;
    }

    private static void WriteData(Stream stream, Tensor tensor)
    {
        // detach/cpu/contiguous return the tensor itself when nothing needs to change.
        using var cpu = tensor.detach().cpu().contiguous();
        var pointer = TensorMemory.DataPointer(cpu);
        var length = TensorMemory.ByteLength(cpu);
        for (long done = 0; done < length; done += WriteBlock)
        {
            var n = (int)Math.Min(WriteBlock, length - done);
            stream.Write(new ReadOnlySpan<byte>(pointer + done, n));
        }
    }
}
