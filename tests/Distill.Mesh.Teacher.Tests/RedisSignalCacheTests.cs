using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Contracts.Teacher.V1;
using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Teacher.Caching;
using Distill.Mesh.Teacher.Grpc;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Teachers;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using TorchSharp;
using ContractFormat = Distill.Mesh.Contracts.Teacher.V1.SignalFormat;

namespace Distill.Mesh.Teacher.Tests;

public class RedisSignalCacheTests
{
    private static EncodedSignal Signal(int positions, int k = 16)
    {
        using var g = new torch.Generator(3);
        var logits = torch.randn(positions, 1000, generator: g);
        return SignalCodec.Encode(TopKTeacherSignal.FromLogits(logits, k, 1.0, TopKMode.Tail), SignalPrecision.Fp32, 1000);
    }

    private static RedisSignalCache Cache(IConnectionMultiplexer redis) => new(redis, TimeSpan.FromMinutes(5), NullLogger<RedisSignalCache>.Instance, breakDuration: TimeSpan.FromMilliseconds(500));

    [Fact]
    public async Task SetThenGet_FromAnotherConnection_ReturnsTheSameSignal()
    {
        using var server = new RedisServer();
        using var a = server.Connect();
        using var b = server.Connect();
        var signal = Signal(20);

        await Cache(a).SetAsync("k1", signal, default);
        var read = await Cache(b).GetAsync("k1", default);

        Assert.NotNull(read);
        Assert.Equal(EncodedSignalSerializer.ToBytes(signal), EncodedSignalSerializer.ToBytes(read!));
        Assert.Null(await Cache(b).GetAsync("missing", default));
    }

    [Fact]
    public async Task LargeValues_AreChunked_AndAMissingOrCorruptChunkIsAMiss()
    {
        using var server = new RedisServer();
        using var redis = server.Connect();
        var cache = Cache(redis);
        var signal = Signal(6000, k: 64); // ~2 MB packed: more than one chunk
        var chunks = (EncodedSignalSerializer.ToBytes(signal).Length + RedisSignalCache.ChunkBytes - 1) / RedisSignalCache.ChunkBytes;
        Assert.True(chunks > 1);
        await cache.SetAsync("big", signal, default);
        var db = redis.GetDatabase();

        Assert.StartsWith($"v1:{chunks}:", (string?)await db.StringGetAsync("big"));
        Assert.NotNull(await cache.GetAsync("big", default));

        await db.StringSetAsync("big:c1", new byte[] { 1, 2, 3 });
        Assert.Null(await cache.GetAsync("big", default));
        await db.KeyDeleteAsync("big:c1");
        Assert.Null(await cache.GetAsync("big", default));
    }

    [Fact]
    public async Task PrecomputedSignals_AreSharedThroughRedis_PerTeacher()
    {
        using var server = new RedisServer();
        using var a = server.Connect();
        using var b = server.Connect();

        await Cache(a).RecordPrecomputedAsync("teacher-1", "topk k=64 T=1 tail vocab=262 q8", default);
        await Cache(a).RecordPrecomputedAsync("teacher-1", "topk k=64 T=1 tail vocab=262 q8", default);
        await Cache(a).RecordPrecomputedAsync("teacher-1", "topk k=32 T=2 tail vocab=262 fp16", default);

        Assert.Equal(["topk k=32 T=2 tail vocab=262 fp16", "topk k=64 T=1 tail vocab=262 q8"], await Cache(b).PrecomputedAsync("teacher-1", default));
        Assert.Empty(await Cache(b).PrecomputedAsync("teacher-2", default));
    }

    [Fact]
    public async Task RedisDown_IsAMissAndSetsAreDropped_ThenServiceResumes()
    {
        using var server = new RedisServer();
        using var redis = server.Connect();
        var cache = Cache(redis);
        await cache.SetAsync("k", Signal(4), default);

        server.Stop();
        Assert.Null(await cache.GetAsync("k", default));
        await cache.SetAsync("k2", Signal(4), default); // no exception

        server.Start();
        await WaitConnected(redis);
        // Recovery: within a few seconds writes and reads work again (each try may still time out under load).
        EncodedSignal? recovered = null;
        for (var attempt = 0; attempt < 20 && recovered is null; attempt++)
        {
            await cache.SetAsync("k3", Signal(4), default);
            recovered = await cache.GetAsync("k3", default);
            if (recovered is null)
                await Task.Delay(250);
        }

        Assert.NotNull(recovered);
    }

    [Fact]
    public async Task RedisDown_OpensTheCircuit_SoLookupsSkipRedis_UntilTheBreakEnds_ThenItIsTriedAgain()
    {
        using var server = new RedisServer();
        using var redis = server.Connect();
        var cache = new RedisSignalCache(redis, TimeSpan.FromMinutes(5), NullLogger<RedisSignalCache>.Instance, breakDuration: TimeSpan.FromSeconds(2));
        await cache.SetAsync("k", Signal(4), default);
        Assert.NotNull(await cache.GetAsync("k", default));
        var healthy = cache.Attempts;

        server.Stop();
        for (var i = 0; i < 40; i++)
            Assert.Null(await cache.GetAsync("k", default));
        var duringOutage = cache.Attempts - healthy;

        server.Start();
        await WaitConnected(redis);
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        // The restarted server is empty: write, then read back.
        EncodedSignal? recovered = null;
        for (var attempt = 0; attempt < 20 && recovered is null; attempt++)
        {
            await cache.SetAsync("k2", Signal(4), default);
            recovered = await cache.GetAsync("k2", default);
            if (recovered is null)
                await Task.Delay(250);
        }

        // Two failures open the circuit: the other 38 lookups are misses without a Redis call (each would wait for a timeout).
        Assert.InRange(duringOutage, 2, 3);
        Assert.NotNull(recovered);
    }

    [Fact]
    public async Task TeacherService_WithRedis_ServesRepeatsFromRedis_AndKeepsServingWhenRedisStops()
    {
        using var server = new RedisServer();
        await using var host = await TeacherHost.StartAsync(new() { ["Teacher:Redis"] = server.RelaxedConnectionString });
        var client = new TeacherService.TeacherServiceClient(host.Channel);
        async Task<ScoreResponse> Score(int[] ids)
        {
            using var call = client.Score(deadline: DateTime.UtcNow.AddSeconds(60));
            await call.RequestStream.WriteAsync(new ScoreRequest { RequestId = "r", TokenIds = SignalMapping.PackIds(ids), Signal = new SignalSpec { Format = ContractFormat.TopK, K = 8, Temperature = 1, Precision = ValuePrecision.Q8 } });
            await call.RequestStream.CompleteAsync();
            await call.ResponseStream.MoveNext();
            return call.ResponseStream.Current;
        }

        Assert.False((await Score([256, 1, 2, 3])).FromCache);
        Assert.True((await Score([256, 1, 2, 3])).FromCache);
        using (var redis = server.Connect())
            Assert.True((long)await redis.GetDatabase().ExecuteAsync("DBSIZE") >= 2, "the signal and its chunk should be in Redis");

        server.Stop();
        var computed = await Score([256, 7, 8, 9]);
        Assert.False(computed.FromCache);
        Assert.Equal(3, computed.Positions);
    }

    private static async Task WaitConnected(ConnectionMultiplexer redis)
    {
        for (var i = 0; i < 100 && !redis.IsConnected; i++)
            await Task.Delay(100);
        Assert.True(redis.IsConnected, "the multiplexer did not reconnect");
    }
}
