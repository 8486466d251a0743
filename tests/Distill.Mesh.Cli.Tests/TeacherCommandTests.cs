using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Specs.Runs;
using Distill.Mesh.Teacher.Extensions;
using Distill.Mesh.Teacher.Jobs;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Recipes;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Distill.Mesh.Cli.Tests;

public sealed class TeacherCommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

    [Fact]
    public async Task Precompute_FillsRedisWithTheRunsBatches_SoTheServiceAnswersTheRunFromTheCache()
    {
        using var redis = new RedisServer();
        WriteRun();

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

    /// <summary>Tiny teacher and student, 12 rows, and a kd run spec with 2 precompute shards (relative paths, the run's own q8 signal).</summary>
    private void WriteRun()
    {
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
    }

    [Fact]
    public async Task A_precompute_job_reports_each_micro_batch_to_the_hosts_watchers_and_logs_to_the_given_writer()
    {
        using var redis = new RedisServer();
        WriteRun();
        var canonical = _dir.Combine("canonical.json");
        File.WriteAllText(canonical, RunSpecLoader.Parse(File.ReadAllText(_dir.Combine("run.yaml")), [], _dir.Path, "run.yaml").Text);
        var reports = new List<PrecomputeProgress>();
        var log = new StringWriter();

        var (app, _) = await Hosting.ServiceHost.StartAsync(0, b =>
        {
            b.AddTeacherService();
            b.Services.AddSingleton<IProgress<PrecomputeProgress>>(new Watcher(reports));
        }, a => a.MapTeacherService(), new Dictionary<string, string?>
        {
            ["Teacher:Model"] = _dir.Combine("teacher"),
            ["Teacher:Redis"] = redis.RelaxedConnectionString,
            ["Teacher:JobSpec"] = canonical,
            ["Teacher:JobShard"] = "1",
        }, quiet: false, default, log);
        await app.WaitForShutdownAsync().WaitAsync(TimeSpan.FromMinutes(2));
        await app.DisposeAsync();
        Environment.ExitCode = 0;
        // Reports are posted to the thread pool: the last may land just after the host stopped.
        for (var i = 0; i < 100 && !Finished(); i++)
            await Task.Delay(50);
        bool Finished()
        {
            lock (reports)
                return reports.Any(r => r.Done == r.Total);
        }

        lock (reports)
        {
            Assert.NotEmpty(reports);
            Assert.All(reports, r => Assert.Equal((1, 2), (r.Shard, r.Shards)));
            Assert.Equal(Enumerable.Range(1, (int)reports[0].Total).Select(i => (long)i), reports.Select(r => r.Done).Order());
        }

        Assert.Contains("info: Distill.Mesh.Teacher.Jobs.PrecomputeJob: Precompute shard 1/2 done in ", log.ToString());
    }

    private sealed class Watcher(List<PrecomputeProgress> reports) : IProgress<PrecomputeProgress>
    {
        public void Report(PrecomputeProgress value)
        {
            lock (reports)
                reports.Add(value);
        }
    }

    public void Dispose() => _dir.Dispose();
}
