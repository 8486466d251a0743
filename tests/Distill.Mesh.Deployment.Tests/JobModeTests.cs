using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Specs.Runs;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Deployment.Tests;

/// <summary>
/// The stages Kubernetes runs as Jobs, each from its published service folder: the trainer runs
/// one run, the extractor one shard or the consolidation, the teacher one precompute shard. Each
/// is killed and run again, and a second rerun of a finished job is a no-op.
/// </summary>
[Collection(PublishedCollection.Name)]
public sealed class JobModeTests(PublishedServices published) : IDisposable
{
    private static readonly Dockerfile Docker = Dockerfile.Load();
    private readonly TempFolder _volumes = new();

    private string Models(params string[] names)
    {
        foreach (var (name, i) in names.Select((n, i) => (n, i)))
        {
            if (Directory.Exists(_volumes.Combine("models", name)))
                continue;
            using var model = TinyModels.Create("llama", seed: 60 + i);
            TinyModels.SaveWithByteTokenizer(model, _volumes.Combine("models", name));
        }

        var data = _volumes.Combine("models", "data.jsonl");
        if (!File.Exists(data))
            File.WriteAllLines(data, Enumerable.Range(0, 48).Select(i => $"{{\"text\": \"job sample {i} {new string((char)('a' + i % 26), 4 + i % 9)}\"}}"));
        return data;
    }

    private string Spec(string name, string yaml)
    {
        var path = _volumes.Combine($"{name}.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    private static List<long> Steps(string metrics) =>
        File.ReadAllLines(metrics).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()).ToList();

    [Fact]
    public async Task TrainerJob_RunsOneRunAndExits_KilledMidRun_ResumesWithEveryStepOnce_AndARerunIsANoOp()
    {
        var data = Models("student");
        var spec = Spec("train-job", $$"""
            recipe: sft
            student: { model: "{{_volumes.Combine("models", "student")}}" }
            dataset: { path: "{{data}}", max_length: 24, eval_fraction: 0 }
            training: { max_steps: 120, batch_size: 4, checkpoint_every: 10, optimizer: { lr: 1.0e-3 } }
            """);
        var job = new Dictionary<string, string> { ["Trainer__JobSpec"] = spec, ["DISTILL_RUN_ID"] = "job-one" };
        var metrics = _volumes.Combine("var-lib-distill", "runs", "job-one", "metrics.jsonl");

        await using (var first = ImageRun.Start(published, Docker, "trainer", _volumes, job))
        {
            for (var i = 0; i < 600 && !(File.Exists(metrics) && File.ReadAllLines(metrics).Length >= 25); i++)
                await Task.Delay(100);
            Assert.True(File.Exists(metrics), first.Log);
            await first.KillAsync(); // a node failure: no chance to checkpoint
        }

        await using (var second = ImageRun.Start(published, Docker, "trainer", _volumes, job))
        {
            var code = await second.WaitForExitAsync(TimeSpan.FromMinutes(3));
            Assert.True(code == 0, $"exit {code}:\n{second.Log}");
        }
        Assert.Equal(Enumerable.Range(1, 120).Select(i => (long)i), Steps(metrics));

        var finished = File.ReadAllText(metrics);
        await using (var third = ImageRun.Start(published, Docker, "trainer", _volumes, job))
        {
            var code = await third.WaitForExitAsync(TimeSpan.FromMinutes(1));
            Assert.True(code == 0, $"exit {code}:\n{third.Log}");
        }
        Assert.Equal(finished, File.ReadAllText(metrics));

        // A bad spec fails the job with exit code 1 (a Job's pod failure policy need not retry it).
        var bad = Spec("bad-job", "recipe: sft\ntraining: { batch_size: 0 }\n");
        await using var refused = ImageRun.Start(published, Docker, "trainer", _volumes, new Dictionary<string, string> { ["Trainer__JobSpec"] = bad, ["DISTILL_RUN_ID"] = "job-bad" });
        Assert.Equal(1, await refused.WaitForExitAsync(TimeSpan.FromMinutes(1)));
        Assert.Contains("training.batch_size", refused.Log);
    }

    [Fact]
    public async Task ExtractorJob_RunsShardsThenConsolidates_KilledShardRerunsClean_AndFinishedShardsAreSkipped()
    {
        Models("big", "small");
        var spec = Spec("extract-job", $$"""
            stages: [extract]
            student: { model: "{{_volumes.Combine("models", "small")}}" }
            teachers: [ { model: "{{_volumes.Combine("models", "big")}}" } ]
            extract: { rank: 4, shards: 2 }
            """);
        var shard = (int i) => new Dictionary<string, string> { ["Extractor__JobSpec"] = spec, ["DISTILL_RUN_ID"] = "extract-one", ["JOB_COMPLETION_INDEX"] = $"{i}" };
        var consolidate = new Dictionary<string, string> { ["Extractor__JobSpec"] = spec, ["DISTILL_RUN_ID"] = "extract-one", ["Extractor__JobConsolidate"] = "true" };
        var output = _volumes.Combine("var-lib-distill", "runs", "extract-one", "extract");

        await using (var first = ImageRun.Start(published, Docker, "extractor", _volumes, shard(0)))
            Assert.Equal(0, await first.WaitForExitAsync(TimeSpan.FromMinutes(2)));
        await using (var early = ImageRun.Start(published, Docker, "extractor", _volumes, consolidate))
            Assert.Equal(1, await early.WaitForExitAsync(TimeSpan.FromMinutes(2))); // shard 1 is not there yet
        await using (var killed = ImageRun.Start(published, Docker, "extractor", _volumes, shard(1)))
        {
            await Task.Delay(300);
            await killed.KillAsync();
        }

        await using (var rerun = ImageRun.Start(published, Docker, "extractor", _volumes, shard(1)))
            Assert.Equal(0, await rerun.WaitForExitAsync(TimeSpan.FromMinutes(2)));
        await using (var skipped = ImageRun.Start(published, Docker, "extractor", _volumes, shard(0)))
        {
            Assert.Equal(0, await skipped.WaitForExitAsync(TimeSpan.FromMinutes(2)));
            Assert.Contains("already finished", skipped.Log);
        }

        await using (var merged = ImageRun.Start(published, Docker, "extractor", _volumes, consolidate))
            Assert.Equal(0, await merged.WaitForExitAsync(TimeSpan.FromMinutes(2)));
        Assert.True(File.Exists(Path.Combine(output, "adapter_model.safetensors")));
        Assert.True(File.Exists(Path.Combine(output, "adapter_config.json")));
    }

    [Fact]
    public async Task TeacherPrecomputeJob_FillsRedisShardByShard_SoTheRunIsServedFromTheCache()
    {
        var data = Models("teacher", "student");
        using var redis = new RedisServer();
        var spec = Spec("precompute-job", $$"""
            stages: [precompute, train]
            recipe: kd
            student: { model: "{{_volumes.Combine("models", "student")}}" }
            teachers: [ { model: "{{_volumes.Combine("models", "teacher")}}" } ]
            signal: { format: topk, k: 16, precision: q8 }
            dataset: { path: "{{data}}", max_length: 24, eval_fraction: 0 }
            training: { max_steps: 6, batch_size: 4, gradient_accumulation: 2 }
            precompute: { shards: 2 }
            """);
        var settings = (int i) => new Dictionary<string, string>
        {
            ["Teacher__Model"] = _volumes.Combine("models", "teacher"),
            ["Teacher__Redis"] = redis.RelaxedConnectionString,
            ["Teacher__JobSpec"] = spec,
            ["JOB_COMPLETION_INDEX"] = $"{i}",
        };

        await using (var killed = ImageRun.Start(published, Docker, "teacher", _volumes, settings(0)))
        {
            await Task.Delay(1500);
            await killed.KillAsync();
        }

        foreach (var i in new[] { 0, 1 })
        {
            await using var job = ImageRun.Start(published, Docker, "teacher", _volumes, settings(i));
            Assert.Equal(0, await job.WaitForExitAsync(TimeSpan.FromMinutes(2)));
            Assert.Contains("6 micro-batches", job.Log); // each of the 2 shards takes half of the 12
        }

        await using (var again = ImageRun.Start(published, Docker, "teacher", _volumes, settings(1)))
        {
            Assert.Equal(0, await again.WaitForExitAsync(TimeSpan.FromMinutes(2)));
            Assert.Contains(" 0 sequences scored", again.Log);
        }

        // The run's own micro-batches through the teacher service on the same Redis: every one a hit.
        var serve = new Dictionary<string, string> { ["Teacher__Model"] = _volumes.Combine("models", "teacher"), ["Teacher__Redis"] = redis.RelaxedConnectionString };
        await using var service = ImageRun.Start(published, Docker, "teacher", _volumes, serve);
        await service.WaitReadyAsync(TimeSpan.FromSeconds(60));
        using var teacher = await RemoteTeacher.ConnectAsync(service.Channel.CreateCallInvoker());
        var run = RunSpecLoader.Parse(File.ReadAllText(spec), [], null, spec).Spec.Train;
        var result = await SignalPrecompute.RunAsync(run, teacher, 0, 1, null, default);

        Assert.Equal(12, result.MicroBatches);
        Assert.Equal(teacher.ScoredSequences, teacher.CachedSequences);
        Assert.Equal(48, teacher.ScoredSequences);
    }

    public void Dispose() => _volumes.Dispose();
}
