using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Teachers;
using Grpc.Net.Client;

namespace Distill.Mesh.Cli.Tests;

public sealed class TeacherCommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

    [Fact]
    public async Task Precompute_FillsRedis_SoTheServiceAnswersFromTheCache()
    {
        using var redis = new RedisServer();
        using (var model = TinyModels.Create("llama", 8))
            TinyModels.SaveWithByteTokenizer(model, _dir.Combine("teacher"));
        File.WriteAllLines(_dir.Combine("d.jsonl"), ["{\"text\": \"alpha beta\"}", "{\"text\": \"gamma\"}"]);

        var (code, output, error) = await CliRunner.Run("teacher", "precompute", "--model", _dir.Combine("teacher"), "--dataset", _dir.Combine("d.jsonl"),
            "--redis", redis.ConnectionString, "--k", "16", "--precision", "q8");
        Assert.True(code == 0, error);
        Assert.Contains("cached 2 sequences", output);

        var (app, address) = await Hosting.ServiceHost.StartTeacherAsync(_dir.Combine("teacher"), null, 0, redis.ConnectionString, quiet: true, default);
        await using (app)
        {
            using var channel = GrpcChannel.ForAddress(address);
            var remote = await RemoteTeacher.ConnectAsync(channel.CreateCallInvoker());
            var tokenizer = Modeling.Tokenization.TokenizerLoader.Load(_dir.Combine("teacher"));
            var ids = tokenizer.Encode("alpha beta", addSpecialTokens: true).Concat([tokenizer.EosTokenId!.Value]).ToArray();
            using var batch = Batching.Collate([new TokenizedExample(ids, ids.Select(i => (long)i).ToArray())], 0);
            var request = new SignalRequest(SignalFormat.TopK, 262, 1.0, 16, Seed: 12345, Precision: SignalPrecision.Q8);
            long hits = 0, misses = 0;
            using (var meter = new System.Diagnostics.Metrics.MeterListener())
            {
                meter.InstrumentPublished = (instrument, listener) =>
                {
                    if (instrument.Meter.Name == SignalCacheMetrics.MeterName && instrument.Name is "distill.cache.hits" or "distill.cache.misses")
                        listener.EnableMeasurementEvents(instrument);
                };
                meter.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
                {
                    // Only this test's Redis: other tests in the process use caches of their own.
                    var server = "";
                    foreach (var tag in tags)
                    {
                        if (tag.Key == "server.address")
                            server = tag.Value as string ?? "";
                    }

                    if (!server.EndsWith($":{redis.Port}", StringComparison.Ordinal))
                        return;
                    if (instrument.Name == "distill.cache.hits")
                        Interlocked.Add(ref hits, value);
                    else
                        Interlocked.Add(ref misses, value);
                });
                meter.Start();
                // The very first request from a run (another seed, as a trainer sends) must hit.
                using var rows = await remote.ScoreAsync(batch, request);
                Assert.Equal(ids.Length - 1, rows.Rows);
            }

            Assert.Equal(0, misses);
            Assert.True(hits >= 1, "the precomputed signal was not found in Redis");
            await app.StopAsync();
        }
    }

    public void Dispose() => _dir.Dispose();
}
