using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Specs.Runs;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Recipes;
using Grpc.Net.Client;

namespace Distill.Mesh.Cli.Tests;

public sealed class TeacherCommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

    [Fact]
    public async Task Precompute_FillsRedisWithTheRunsBatches_SoTheServiceAnswersTheRunFromTheCache()
    {
        using var redis = new RedisServer();
        using (var model = TinyModels.Create("llama", 8))
            TinyModels.SaveWithByteTokenizer(model, _dir.Combine("teacher"));
        using (var model = TinyModels.Create("qwen2", 9))
            TinyModels.SaveWithByteTokenizer(model, _dir.Combine("student"));
        File.WriteAllLines(_dir.Combine("d.jsonl"), Enumerable.Range(0, 12).Select(i => $"{{\"text\": \"alpha beta {i} {new string('g', i % 4 + 1)}\"}}"));
        // Relative paths, as a config next to its data has them; the signal is the run's own (q8 here).
        File.WriteAllText(_dir.Combine("run.yaml"), """
            recipe: kd
            student: { model: student }
            teachers: [ { model: teacher } ]
            signal: { format: topk, k: 16, precision: q8 }
            dataset: { path: d.jsonl, max_length: 24, eval_fraction: 0 }
            training: { max_steps: 3, batch_size: 4 }
            precompute: { shards: 2 }
            """);

        var (code, output, error) = await CliRunner.Run("teacher", "precompute", "--spec", _dir.Combine("run.yaml"), "--redis", redis.RelaxedConnectionString);
        Assert.True(code == 0, error + output);
        Assert.Contains("precomputed 2 shard(s)", output);

        var (app, address) = await Hosting.ServiceHost.StartTeacherAsync(_dir.Combine("teacher"), null, 0, redis.RelaxedConnectionString, quiet: true, default);
        await using (app)
        {
            using var channel = GrpcChannel.ForAddress(address);
            var remote = await RemoteTeacher.ConnectAsync(channel.CreateCallInvoker());
            var run = RunSpecLoader.Parse(File.ReadAllText(_dir.Combine("run.yaml")), [], _dir.Path, "run.yaml").Spec.Train;
            await SignalPrecompute.RunAsync(run, remote, 0, 1, null, default);

            Assert.Equal(12, remote.ScoredSequences);
            Assert.Equal(12, remote.CachedSequences);
            await app.StopAsync();
        }

        var (bad, _, badError) = await CliRunner.Run("teacher", "precompute", "--spec", _dir.Combine("run.yaml"), "--redis", redis.RelaxedConnectionString, "recipe=gkd");
        Assert.Equal(1, bad);
        Assert.Contains("precompute", badError);
    }

    public void Dispose() => _dir.Dispose();
}
