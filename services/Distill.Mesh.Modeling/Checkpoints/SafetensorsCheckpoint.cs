using Distill.Mesh.Specs.Storage;
using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Checkpoints;

/// <summary>
/// The weights of a Hugging Face model folder: <c>model.safetensors</c>, or shards listed in
/// <c>model.safetensors.index.json</c>. Tensors are read on demand from memory-mapped shards.
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    /// <summary>File name of a single-file checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>File name of the shard index.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>Shards above this size are split; HF's default <c>max_shard_size</c> is 5 GB.</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    private readonly Dictionary<string, SafetensorsFile> _fileOf;
    private readonly List<SafetensorsFile> _files;

    private SafetensorsCheckpoint(string folder, List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> fileOf)
    {
        Folder = folder;
        _files = files;
        _fileOf = fileOf;
    }

    /// <summary>The folder the checkpoint was read from.</summary>
    public string Folder { get; }

    /// <summary>The shard files.</summary>
    public IReadOnlyList<SafetensorsFile> Files => _files;

    /// <summary>Every tensor name, in shard then data order.</summary>
    public IEnumerable<string> Names => _files.SelectMany(f => f.Tensors).Select(t => t.Name).Where(_fileOf.ContainsKey);

    /// <summary>Metadata of the first shard (HF writes the same <c>format</c> entry to each).</summary>
    public IReadOnlyDictionary<string, string> Metadata => _files[0].Metadata;

    /// <summary>Opens a folder (or a single .safetensors file).</summary>
    public static SafetensorsCheckpoint Open(string path)
    {
        if (File.Exists(path))
        {
            var single = SafetensorsFile.Open(path);
            return new SafetensorsCheckpoint(Path.GetDirectoryName(Path.GetFullPath(path))!, [single], single.Tensors.ToDictionary(t => t.Name, _ => single));
        }

        if (!Directory.Exists(path))
            throw new FileNotFoundException($"no checkpoint at '{path}' (neither a folder nor a file)");
        var index = Path.Combine(path, IndexFileName);
        if (File.Exists(index))
            return OpenSharded(path, index);
        var file = Path.Combine(path, SingleFileName);
        if (File.Exists(file))
        {
            var single = SafetensorsFile.Open(file);
            return new SafetensorsCheckpoint(path, [single], single.Tensors.ToDictionary(t => t.Name, _ => single));
        }

        throw new FileNotFoundException($"{path}: no {SingleFileName} or {IndexFileName} (only safetensors checkpoints are supported)");
    }

    private static SafetensorsCheckpoint OpenSharded(string folder, string indexPath)
    {
        Dictionary<string, string> weightMap;
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(indexPath)) as JsonObject;
            var map = root?["weight_map"] as JsonObject
                ?? throw new CheckpointFormatException($"{indexPath}: missing 'weight_map' object");
            weightMap = map.ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<string>()
                ?? throw new CheckpointFormatException($"{indexPath}: weight_map entry '{kv.Key}' is not a file name"));
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new CheckpointFormatException($"{indexPath}: invalid index ({e.Message})", e);
        }

        var shardNames = weightMap.Values.Distinct(StringComparer.Ordinal).OrderBy(n => n, StringComparer.Ordinal).ToList();
        foreach (var name in shardNames)
        {
            if (name.Contains('/') || name.Contains('\\') || name is "." or "..")
                throw new CheckpointFormatException($"{indexPath}: shard name '{name}' must be a plain file name in the folder");
        }

        var missing = shardNames.Where(n => !File.Exists(Path.Combine(folder, n))).ToList();
        if (missing.Count > 0)
            throw new CheckpointFormatException($"{indexPath}: shard file(s) named in the index are missing: {string.Join(", ", missing)}");

        var files = new List<SafetensorsFile>();
        try
        {
            var byName = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var shard in shardNames)
                files.Add(SafetensorsFile.Open(Path.Combine(folder, shard)));
            var byShard = files.ToDictionary(f => Path.GetFileName(f.Path), StringComparer.Ordinal);
            foreach (var (tensor, shard) in weightMap)
            {
                var file = byShard[shard];
                if (!file.Contains(tensor))
                    throw new CheckpointFormatException($"{indexPath}: tensor '{tensor}' is mapped to {shard}, which does not contain it");
                byName[tensor] = file;
            }

            return new SafetensorsCheckpoint(folder, files, byName);
        }
        catch
        {
            foreach (var f in files)
                f.Dispose();
            throw;
        }
    }

    /// <summary>
    /// SHA-256 of a model folder's config.json, every weight's name, dtype and shape, and samples
    /// of every weight's bytes (whole tensors up to 1 MiB; 16 evenly spaced 4 KiB blocks of larger
    /// ones): a fine-tune and its base differ, yet only a few MiB are read whatever the model's size.
    /// </summary>
    public static string Fingerprint(string folder)
    {
        using var checkpoint = Open(folder);
        return checkpoint.Fingerprint();
    }

    /// <inheritdoc cref="Fingerprint(string)"/>
    public string Fingerprint()
    {
        const int block = 4096, blocks = 16, whole = 1 << 20;
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        sha.AppendData(File.ReadAllBytes(System.IO.Path.Combine(Folder, "config.json")));
        foreach (var name in Names.Order(StringComparer.Ordinal))
        {
            var info = GetInfo(name);
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"\n{info}\n"));
            var file = FileOf(name);
            if (info.ByteLength <= whole)
            {
                sha.AppendData(file.GetBytes(name));
                continue;
            }

            var stride = (info.ByteLength - block) / (blocks - 1);
            for (var i = 0; i < blocks; i++)
                sha.AppendData(file.GetBytes(name, Math.Min(i * stride, info.ByteLength - block), block));
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>Whether a tensor of this name exists.</summary>
    public bool Contains(string name) => _fileOf.ContainsKey(name);

    /// <summary>The header entry of a tensor.</summary>
    public SafetensorsTensorInfo GetInfo(string name) => FileOf(name).GetInfo(name);

    /// <summary>Reads a tensor into a new CPU tensor.</summary>
    public Tensor ReadTensor(string name) => FileOf(name).ReadTensor(name);

    /// <summary>
    /// Single elements of a float tensor (flat indices), read straight from the mapped file: a
    /// sample of a large tensor without reading the rest of it.
    /// </summary>
    public double[] ReadElements(string name, IReadOnlyList<long> indices)
    {
        var info = GetInfo(name);
        var file = FileOf(name);
        var size = info.DType.SizeOf();
        var count = info.Shape.Aggregate(1L, (a, b) => a * b);
        var values = new double[indices.Count];
        for (var i = 0; i < values.Length; i++)
        {
            if (indices[i] < 0 || indices[i] >= count)
                throw new ArgumentOutOfRangeException(nameof(indices), $"element {indices[i]} is outside '{name}' ({count} elements)");
            var bytes = file.GetBytes(name, indices[i] * size, size);
            values[i] = info.DType switch
            {
                SafetensorsDType.F32 => BinaryPrimitives.ReadSingleLittleEndian(bytes),
                SafetensorsDType.F64 => BinaryPrimitives.ReadDoubleLittleEndian(bytes),
                SafetensorsDType.F16 => (double)BinaryPrimitives.ReadHalfLittleEndian(bytes),
                SafetensorsDType.BF16 => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes) << 16),
                _ => throw new NotSupportedException($"'{name}' is {info.DType}; only float tensors can be sampled"),
            };
        }

        return values;
    }

    /// <summary>Copies a tensor into an existing one of the same shape.</summary>
    public void CopyInto(string name, Tensor destination) => FileOf(name).CopyInto(name, destination);

    private SafetensorsFile FileOf(string name) =>
        _fileOf.TryGetValue(name, out var file) ? file : throw new KeyNotFoundException($"{Folder}: no tensor named '{name}'");

    /// <summary>
    /// Saves tensors as <c>model.safetensors</c>, or as <c>model-0000i-of-0000n.safetensors</c>
    /// shards plus the index when they exceed <paramref name="maxShardBytes"/>. Each file is
    /// written atomically and the index last, so a reader never sees an index naming unwritten shards.
    /// Shard files of an earlier save that the new one does not use are removed.
    /// </summary>
    public static void Save(
        string folder,
        IReadOnlyList<KeyValuePair<string, Tensor>> tensors,
        long maxShardBytes = DefaultMaxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxShardBytes, 1);
        Directory.CreateDirectory(folder);
        metadata ??= new Dictionary<string, string> { ["format"] = "pt" };

        var shards = new List<List<KeyValuePair<string, Tensor>>> { new() };
        long current = 0, total = 0;
        foreach (var entry in tensors)
        {
            var size = SafetensorsWriter.DataBytes(entry.Value);
            if (current > 0 && current + size > maxShardBytes)
            {
                shards.Add([]);
                current = 0;
            }

            shards[^1].Add(entry);
            current += size;
            total += size;
        }

        var stale = Directory.EnumerateFiles(folder, "model-*-of-*.safetensors").Select(Path.GetFileName).ToHashSet();
        if (shards.Count == 1)
        {
            SafetensorsWriter.Write(Path.Combine(folder, SingleFileName), shards[0], metadata);
            File.Delete(Path.Combine(folder, IndexFileName));
        }
        else
        {
            var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i < shards.Count; i++)
            {
                var name = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
                SafetensorsWriter.Write(Path.Combine(folder, name), shards[i], metadata);
                stale.Remove(name);
                foreach (var (tensor, _) in shards[i])
                    weightMap[tensor] = name;
            }

            var index = new JsonObject
            {
                ["metadata"] = new JsonObject { ["total_size"] = total },
                ["weight_map"] = new JsonObject(weightMap.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            };
            AtomicFile.WriteAllText(Path.Combine(folder, IndexFileName), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.Delete(Path.Combine(folder, SingleFileName));
        }

        foreach (var name in stale)
            File.Delete(Path.Combine(folder, name!));
    }

    public void Dispose()
    {
        foreach (var file in _files)
            file.Dispose();
    }
}
