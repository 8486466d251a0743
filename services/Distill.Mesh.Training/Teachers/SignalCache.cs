using System.Buffers.Binary;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text;

namespace Distill.Mesh.Training.Teachers;

/// <summary>
/// Where scored teacher signals are kept between runs and epochs. An optimisation only: a failing
/// cache is a miss, never an error.
/// </summary>
public interface ISignalCache
{
    Task<EncodedSignal?> GetAsync(string key, CancellationToken cancellationToken);

    Task SetAsync(string key, EncodedSignal signal, CancellationToken cancellationToken);

    /// <summary>Notes that a precompute filled this cache with <paramref name="signal"/> (a <see cref="SignalCacheKey.Describe"/> text) of a teacher.</summary>
    Task RecordPrecomputedAsync(string fingerprint, string signal, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The signals precomputes filled this cache with for a teacher.</summary>
    Task<IReadOnlyList<string>> PrecomputedAsync(string fingerprint, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<string>>([]);
}

/// <summary>Cache keys: SHA-256 of everything that determines a signal.</summary>
public static class SignalCacheKey
{
    public static string For(TeacherDescription teacher, ReadOnlySpan<int> tokenIds, SignalRequest request, SignalPrecision precision)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        // The seed and sample count shape only sampled signals: a top-k signal is the same whatever
        // seed a run passes, and must hit what `teacher precompute` stored.
        var sampling = request.Format == SignalFormat.Sampled ? $"{request.Samples}\n{request.Seed}" : "-";
        sha.AppendData(Encoding.UTF8.GetBytes($"{teacher.Fingerprint}\n{teacher.TokenizerHash}\n{request.Format}\n{request.K}\n{request.Temperature:R}\n{request.Mode}\n{request.Vocabulary}\n{sampling}\n{precision}\n"));
        Span<byte> id = stackalloc byte[4];
        foreach (var token in tokenIds)
        {
            BinaryPrimitives.WriteInt32LittleEndian(id, token);
            sha.AppendData(id);
        }

        return "distill:signal:v1:" + Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>The settings a key hashes besides the teacher and the ids, in words (e.g. "topk k=64 T=1 tail vocab=262 fp32").</summary>
    public static string Describe(SignalRequest request, SignalPrecision precision) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{request.Format.ToString().ToLowerInvariant()} k={request.K}{(request.Format == SignalFormat.Sampled ? $" samples={request.Samples}" : "")} T={request.Temperature:R} {request.Mode.ToString().ToLowerInvariant()} vocab={request.Vocabulary} {precision.ToString().ToLowerInvariant()}");

    /// <summary>The set a cache keeps the precomputed signals of a teacher in.</summary>
    public static string PrecomputedSet(string fingerprint) => $"distill:precomputed:v1:{fingerprint}";
}

/// <summary>A compact, versioned binary form of <see cref="EncodedSignal"/> for caches.</summary>
public static class EncodedSignalSerializer
{
    private const byte Version = 1;

    public static byte[] ToBytes(EncodedSignal signal)
    {
        using var stream = new MemoryStream();
        using var writer = new BinaryWriter(stream);
        writer.Write(Version);
        writer.Write(signal.Sampled);
        writer.Write(signal.Positions);
        writer.Write(signal.K);
        writer.Write(signal.IdBits);
        writer.Write((byte)signal.Precision);
        foreach (var part in new[] { signal.Ids, signal.Values, signal.ValueScales, signal.TailMass, signal.SampledLogProbs })
        {
            writer.Write(part.Length);
            writer.Write(part);
        }

        writer.Flush();
        return stream.ToArray();
    }

    /// <summary>Reads bytes written by <see cref="ToBytes"/>; null when they are not a valid signal.</summary>
    public static EncodedSignal? FromBytes(byte[] bytes)
    {
        try
        {
            using var reader = new BinaryReader(new MemoryStream(bytes));
            if (reader.ReadByte() != Version)
                return null;
            var sampled = reader.ReadBoolean();
            var (positions, k, bits, precision) = (reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), (SignalPrecision)reader.ReadByte());
            var parts = new byte[5][];
            for (var i = 0; i < parts.Length; i++)
            {
                var length = reader.ReadInt32();
                if (length < 0 || length > bytes.Length)
                    return null;
                parts[i] = reader.ReadBytes(length);
            }

            return new EncodedSignal(sampled, positions, k, bits, parts[0], precision, parts[1], parts[2], parts[3], parts[4]);
        }
        catch (EndOfStreamException)
        {
            return null;
        }
    }
}

/// <summary>Hit, miss and byte counters shared by the cache implementations (OpenTelemetry reads the meter).</summary>
public static class SignalCacheMetrics
{
    public const string MeterName = "Distill.Mesh.SignalCache";

    private static readonly Meter Meter = new(MeterName);

    public static readonly Counter<long> Hits = Meter.CreateCounter<long>("distill.cache.hits");
    public static readonly Counter<long> Misses = Meter.CreateCounter<long>("distill.cache.misses");
    public static readonly Counter<long> BytesRead = Meter.CreateCounter<long>("distill.cache.bytes_read", "By");
    public static readonly Counter<long> BytesWritten = Meter.CreateCounter<long>("distill.cache.bytes_written", "By");
}

/// <summary>
/// The embedded default: an in-process LRU bounded by bytes — what each entry really holds: its
/// value, its key string and the list node and dictionary slot that index it.
/// </summary>
public sealed class InMemorySignalCache(long capacityBytes = 512L << 20) : ISignalCache
{
    /// <summary>Bytes an entry holds besides its value and key characters: the byte[] and string headers, the list node, the dictionary slot (64-bit runtime).</summary>
    public const int EntryOverheadBytes = 24 + 22 + 48 + 24;

    /// <summary>What an entry of <paramref name="key"/> and <paramref name="valueBytes"/> holds in memory.</summary>
    public static long Footprint(string key, int valueBytes) => valueBytes + 2L * key.Length + EntryOverheadBytes;

    /// <summary>Bytes the entries hold now (never above the capacity).</summary>
    public long Bytes
    {
        get
        {
            lock (_lock)
                return _bytes;
        }
    }

    private readonly Dictionary<string, HashSet<string>> _precomputed = new(StringComparer.Ordinal);

    public Task RecordPrecomputedAsync(string fingerprint, string signal, CancellationToken cancellationToken)
    {
        lock (_precomputed)
        {
            if (!_precomputed.TryGetValue(fingerprint, out var signals))
                _precomputed[fingerprint] = signals = new HashSet<string>(StringComparer.Ordinal);
            signals.Add(signal);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<string>> PrecomputedAsync(string fingerprint, CancellationToken cancellationToken)
    {
        lock (_precomputed)
            return Task.FromResult<IReadOnlyList<string>>(_precomputed.TryGetValue(fingerprint, out var signals) ? [.. signals.Order(StringComparer.Ordinal)] : []);
    }

    private readonly Dictionary<string, LinkedListNode<(string Key, byte[] Value)>> _entries = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Key, byte[] Value)> _order = new();
    private readonly object _lock = new();
    private long _bytes;

    public long Hits { get; private set; }

    public long Misses { get; private set; }

    public Task<EncodedSignal?> GetAsync(string key, CancellationToken cancellationToken)
    {
        byte[]? value = null;
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                value = node.Value.Value;
                Hits++;
            }
            else
            {
                Misses++;
            }
        }

        (value is null ? SignalCacheMetrics.Misses : SignalCacheMetrics.Hits).Add(1);
        if (value is not null)
            SignalCacheMetrics.BytesRead.Add(value.Length);
        return Task.FromResult(value is null ? null : EncodedSignalSerializer.FromBytes(value));
    }

    public Task SetAsync(string key, EncodedSignal signal, CancellationToken cancellationToken)
    {
        var value = EncodedSignalSerializer.ToBytes(signal);
        if (Footprint(key, value.Length) > capacityBytes)
            return Task.CompletedTask;
        lock (_lock)
        {
            if (_entries.Remove(key, out var old))
            {
                _order.Remove(old);
                _bytes -= Footprint(old.Value.Key, old.Value.Value.Length);
            }

            _entries[key] = _order.AddFirst((key, value));
            _bytes += Footprint(key, value.Length);
            while (_bytes > capacityBytes && _order.Last is { } last)
            {
                _order.RemoveLast();
                _entries.Remove(last.Value.Key);
                _bytes -= Footprint(last.Value.Key, last.Value.Value.Length);
            }
        }

        SignalCacheMetrics.BytesWritten.Add(value.Length);
        return Task.CompletedTask;
    }
}
