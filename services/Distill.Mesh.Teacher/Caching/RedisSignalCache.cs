using System.Diagnostics;
using System.Security.Cryptography;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Training.Teachers;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using StackExchange.Redis;

namespace Distill.Mesh.Teacher.Caching;

/// <summary>
/// The signal cache in Redis. Values over <see cref="ChunkBytes"/> are split; the data keys are
/// written before the index key, and an index whose chunks are missing or do not hash to the
/// recorded SHA-256 is a miss. Every Redis error is a miss (logged once): with Redis down the
/// teacher recomputes and runs go on. A circuit breaker (Polly) keeps an outage cheap: once half
/// of the calls of the last two seconds (at least two) failed, Redis is skipped for
/// <c>breakDuration</c> (every lookup a miss at once, not a timeout each), then one call tries it again.
/// </summary>
public sealed class RedisSignalCache : ISignalCache
{
    public const int ChunkBytes = 1 << 20;

    private readonly IConnectionMultiplexer redis;
    private readonly TimeSpan ttl;
    private readonly ILogger<RedisSignalCache> logger;
    private readonly ResiliencePipeline _breaker;
    private long _attempts;

    public RedisSignalCache(IConnectionMultiplexer redis, TimeSpan ttl, ILogger<RedisSignalCache> logger, TimeSpan? breakDuration = null)
    {
        this.redis = redis;
        this.ttl = ttl;
        this.logger = logger;
        _server = new("server.address", string.Join(",", redis.GetEndPoints().Select(e => e.ToString())));
        _breaker = new ResiliencePipelineBuilder().AddCircuitBreaker(new CircuitBreakerStrategyOptions
        {
            FailureRatio = 0.5,
            MinimumThroughput = 2,
            // A short window: when Redis goes down every call fails, so half of the last two seconds' calls fail quickly.
            SamplingDuration = TimeSpan.FromSeconds(2),
            BreakDuration = breakDuration ?? TimeSpan.FromSeconds(15),
            ShouldHandle = new PredicateBuilder().Handle<RedisException>().Handle<TimeoutException>().Handle<ObjectDisposedException>(),
            OnOpened = args =>
            {
                logger.LogWarning("Redis failed twice; skipping it for {Break} before trying again", args.BreakDuration);
                return ValueTask.CompletedTask;
            },
        }).Build();
    }

    /// <summary>Calls that reached Redis (not skipped by the open circuit).</summary>
    public long Attempts => Interlocked.Read(ref _attempts);

    /// <summary>Runs one Redis operation through the breaker; an open circuit is a failure at once.</summary>
    private ValueTask<T> Call<T>(Func<CancellationToken, ValueTask<T>> operation, CancellationToken cancellationToken) =>
        _breaker.ExecuteAsync(token =>
        {
            Interlocked.Increment(ref _attempts);
            return operation(token);
        }, cancellationToken);

    /// <summary>Tags the cache metrics with the Redis server(s), so several caches in one process can be told apart.</summary>
    private readonly KeyValuePair<string, object?> _server;

    private int _failing;

    public async Task<EncodedSignal?> GetAsync(string key, CancellationToken cancellationToken)
    {
        using var activity = MeshTelemetry.Source.StartActivity("redis GET", ActivityKind.Client);
        activity?.SetTag("db.system", "redis");
        try
        {
            var bytes = await Call(async _ =>
            {
                var db = redis.GetDatabase();
                var index = (string?)await db.StringGetAsync(key);
                if (index is null || !TryParseIndex(index, out var chunks, out var length, out var hash))
                    return null;
                var parts = await db.StringGetAsync(Enumerable.Range(0, chunks).Select(i => (RedisKey)$"{key}:c{i}").ToArray());
                if (parts.Any(p => p.IsNull))
                    return null;
                var value = parts.SelectMany(p => (byte[])p!).ToArray();
                return value.Length == length && Convert.ToHexStringLower(SHA256.HashData(value)) == hash ? value : null;
            }, cancellationToken);
            if (bytes is null)
                return Miss(activity);
            Recovered();
            SignalCacheMetrics.Hits.Add(1, _server);
            SignalCacheMetrics.BytesRead.Add(bytes.Length, _server);
            activity?.SetTag("distill.cache.hit", true);
            return EncodedSignalSerializer.FromBytes(bytes);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException or BrokenCircuitException)
        {
            Failed(e);
            return Miss(activity);
        }
    }

    public async Task SetAsync(string key, EncodedSignal signal, CancellationToken cancellationToken)
    {
        using var activity = MeshTelemetry.Source.StartActivity("redis SET", ActivityKind.Client);
        activity?.SetTag("db.system", "redis");
        try
        {
            var bytes = EncodedSignalSerializer.ToBytes(signal);
            await Call(async _ =>
            {
                var db = redis.GetDatabase();
                var chunks = (bytes.Length + ChunkBytes - 1) / ChunkBytes;
                for (var i = 0; i < chunks; i++)
                {
                    var slice = bytes.AsMemory(i * ChunkBytes, Math.Min(ChunkBytes, bytes.Length - i * ChunkBytes)).ToArray();
                    await db.StringSetAsync($"{key}:c{i}", slice, ttl);
                }

                // The index last: a reader that finds it finds the data.
                return await db.StringSetAsync(key, $"v1:{chunks}:{bytes.Length}:{Convert.ToHexStringLower(SHA256.HashData(bytes))}", ttl);
            }, cancellationToken);
            Recovered();
            SignalCacheMetrics.BytesWritten.Add(bytes.Length, _server);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException or BrokenCircuitException)
        {
            Failed(e);
        }
    }

    public async Task RecordPrecomputedAsync(string fingerprint, string signal, CancellationToken cancellationToken)
    {
        try
        {
            await Call(async _ =>
            {
                var db = redis.GetDatabase();
                var set = SignalCacheKey.PrecomputedSet(fingerprint);
                await db.SetAddAsync(set, signal);
                return await db.KeyExpireAsync(set, ttl);
            }, cancellationToken);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException or BrokenCircuitException)
        {
            Failed(e);
        }
    }

    public async Task<IReadOnlyList<string>> PrecomputedAsync(string fingerprint, CancellationToken cancellationToken)
    {
        try
        {
            var members = await Call(_ => new ValueTask<RedisValue[]>(redis.GetDatabase().SetMembersAsync(SignalCacheKey.PrecomputedSet(fingerprint))), cancellationToken);
            return [.. members.Select(m => m.ToString()).Order(StringComparer.Ordinal)];
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException or BrokenCircuitException)
        {
            Failed(e);
            return [];
        }
    }

    private EncodedSignal? Miss(Activity? activity)
    {
        SignalCacheMetrics.Misses.Add(1, _server);
        activity?.SetTag("distill.cache.hit", false);
        return null;
    }

    private static bool TryParseIndex(string index, out int chunks, out int length, out string hash)
    {
        var parts = index.Split(':');
        chunks = length = 0;
        hash = "";
        if (parts.Length != 4 || parts[0] != "v1" || !int.TryParse(parts[1], out chunks) || !int.TryParse(parts[2], out length) || chunks < 1)
            return false;
        hash = parts[3];
        return true;
    }

    private void Failed(Exception e)
    {
        if (Interlocked.Exchange(ref _failing, 1) == 0)
            logger.LogWarning(e, "Redis is unavailable; serving without the cache until it returns");
    }

    private void Recovered()
    {
        if (Interlocked.Exchange(ref _failing, 0) == 1)
            logger.LogInformation("Redis is reachable again; cache restored");
    }
}
