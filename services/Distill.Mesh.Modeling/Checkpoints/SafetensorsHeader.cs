using System.Text.Json;

namespace Distill.Mesh.Modeling.Checkpoints;

/// <summary>
/// The parsed, validated JSON header of a safetensors file. Every header is treated as hostile:
/// each entry's dtype, shape and offsets are checked, offsets must tile the data section exactly
/// (no overlap, no hole, no trailing bytes), and names must be unique.
/// </summary>
public sealed class SafetensorsHeader
{
    /// <summary>Largest header accepted, in bytes (the reference implementation uses 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private SafetensorsHeader(IReadOnlyList<SafetensorsTensorInfo> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
        ByName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>Tensors in the order of their data.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }

    /// <summary>Tensors by name.</summary>
    public IReadOnlyDictionary<string, SafetensorsTensorInfo> ByName { get; }

    /// <summary>The free-form string map stored under <c>__metadata__</c>.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Parses and validates a header against the size of the data section that follows it.</summary>
    /// <param name="json">The header bytes (UTF-8 JSON, possibly padded with spaces).</param>
    /// <param name="dataLength">Bytes in the file after the header.</param>
    /// <param name="source">File name for error messages.</param>
    public static SafetensorsHeader Parse(ReadOnlySpan<byte> json, long dataLength, string source)
    {
        // Names and strings are decoded later; bytes that are not UTF-8 are refused here, whole.
        if (!System.Text.Unicode.Utf8.IsValid(json))
            throw Error(source, "header is not valid UTF-8");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw Error(source, $"header is not valid JSON ({e.Message})", e);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw Error(source, "header must be a JSON object");

            var tensors = new List<SafetensorsTensorInfo>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw Error(source, $"duplicate name '{property.Name}' in header");
                if (property.Name == "__metadata__")
                    ReadMetadata(property.Value, metadata, source);
                else
                    tensors.Add(ReadEntry(property.Name, property.Value, dataLength, source));
            }

            tensors.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            CheckTiling(tensors, dataLength, source);
            return new SafetensorsHeader(tensors, metadata);
        }
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Error(source, "__metadata__ must be an object of strings");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw Error(source, $"__metadata__ value '{entry.Name}' is not a string");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw Error(source, $"duplicate __metadata__ key '{entry.Name}'");
        }
    }

    private static SafetensorsTensorInfo ReadEntry(string name, JsonElement value, long dataLength, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Error(source, $"tensor '{name}': entry must be an object");
        // A field given twice would be read as its last value (the reference reader refuses it).
        var fields = new HashSet<string>(StringComparer.Ordinal);
        foreach (var field in value.EnumerateObject())
        {
            if (!fields.Add(field.Name))
                throw Error(source, $"tensor '{name}': field '{field.Name}' appears twice");
        }

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Error(source, $"tensor '{name}': missing string field 'dtype'");
        var dtypeText = dtypeElement.GetString()!;
        if (!SafetensorsDTypes.TryParse(dtypeText, out var dtype))
            throw Error(source, $"tensor '{name}': unknown dtype '{dtypeText}' (known: {string.Join(", ", Enum.GetNames<SafetensorsDType>())})");

        var shape = ReadLongArray(value, "shape", name, source);
        foreach (var dim in shape)
        {
            if (dim < 0)
                throw Error(source, $"tensor '{name}': negative dimension in shape [{string.Join(", ", shape)}]");
        }

        var offsets = ReadLongArray(value, "data_offsets", name, source);
        if (offsets.Length != 2)
            throw Error(source, $"tensor '{name}': data_offsets must be [begin, end]");
        var (begin, end) = (offsets[0], offsets[1]);
        if (begin < 0 || end < begin)
            throw Error(source, $"tensor '{name}': invalid data_offsets [{begin}, {end}]");
        if (end > dataLength)
            throw Error(source, $"tensor '{name}': data_offsets [{begin}, {end}] run past the end of the data ({dataLength} bytes); the file may be truncated");

        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (a, d) => checked(a * d)) * dtype.SizeOf());
        }
        catch (OverflowException)
        {
            throw Error(source, $"tensor '{name}': shape [{string.Join(", ", shape)}] overflows");
        }

        if (end - begin != expected)
            throw Error(source, $"tensor '{name}': {end - begin} bytes of data but shape [{string.Join(", ", shape)}] of {dtype} needs {expected}");

        return new SafetensorsTensorInfo(name, dtype, shape, begin, end);
    }

    private static long[] ReadLongArray(JsonElement value, string field, string name, string source)
    {
        if (!value.TryGetProperty(field, out var array) || array.ValueKind != JsonValueKind.Array)
            throw Error(source, $"tensor '{name}': missing array field '{field}'");
        var result = new long[array.GetArrayLength()];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out result[i++]))
                throw Error(source, $"tensor '{name}': '{field}' must hold integers");
        }

        return result;
    }

    private static void CheckTiling(List<SafetensorsTensorInfo> sorted, long dataLength, string source)
    {
        long position = 0;
        foreach (var tensor in sorted)
        {
            if (tensor.Begin < position)
                throw Error(source, $"tensor '{tensor.Name}' overlaps the previous tensor's data (begins at {tensor.Begin}, previous ends at {position})");
            if (tensor.Begin > position)
                throw Error(source, $"hole in the data before tensor '{tensor.Name}' (bytes {position}..{tensor.Begin} belong to no tensor)");
            position = tensor.End;
        }

        if (position != dataLength)
            throw Error(source, $"{dataLength - position} trailing bytes after the last tensor's data");
    }

    private static CheckpointFormatException Error(string source, string problem, Exception? inner = null) =>
        new($"{source}: {problem}", inner);
}
