using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.Contracts.Trainer.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Distill.Mesh.Trainer.Tests;

public class StagedRunTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Run_TakesEveryStageInOrder_TrainingIsServedFromThePrecomputedCache_AndTheResultIsPublishedWithItsLineage()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var registry = new RegistryService.RegistryServiceClient(await mesh.StartRegistryAsync());
        var (_, channel) = await mesh.StartTrainerAsync();
        var client = new TrainerService.TrainerServiceClient(channel);
        var spec = mesh.Yaml(4).Replace("eval_fraction: 0", "eval_fraction: 0.25") + """

            stages: [precompute, train, extract, evaluate, publish]
            mesh: { teacher: "http://teacher" }
            extract: { rank: 4, svd: randomized }
            publish: { name: staged-student, registry: "http://registry", tags: [candidate] }
            """;

        await client.StartAsync(new StartRequest { RunId = "staged", ConfigYaml = spec }, deadline: DateTime.UtcNow + Timeout);
        var events = new List<TrainEvent>();
        using (var call = client.Watch(new WatchRequest { RunId = "staged" }, deadline: DateTime.UtcNow + Timeout))
        {
            await foreach (var e in call.ResponseStream.ReadAllAsync())
                events.Add(e);
        }

        var info = (await client.ListAsync(new ListRequest(), deadline: DateTime.UtcNow + Timeout)).Runs.Single();
        Assert.True(info.State == RunState.Succeeded, info.Error);
        Assert.Equal(["precompute", "train", "extract", "evaluate", "publish"], info.Stages.Select(s => s.Name));
        Assert.All(info.Stages, s => Assert.Equal(RunState.Succeeded, s.State));
        // Stages started in order, each after the one before had ended.
        var started = events.Where(e => e.Stage is { State: RunState.Running, Done: 0 }).Select(e => e.Stage.Name).Distinct().ToList();
        Assert.Equal(["precompute", "train", "extract", "evaluate", "publish"], started);
        Assert.All(info.Stages.Zip(info.Stages.Skip(1)), pair => Assert.True(pair.First.Ended.ToDateTime() <= pair.Second.Started.ToDateTime()));
        // Every micro-batch of training was in the cache the precompute stage filled.
        // 16 training sequences (4 steps × 4), all from the cache, then the final evaluation's 6, which precompute does not cover.
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(info.Stages.Single(s => s.Name == "train").Message, @"teacher cache hits 72[.,]7 ?% of 22 sequences"), info.Stages.Single(s => s.Name == "train").Message);
        Assert.True(info.Stages.Single(s => s.Name == "extract").Done > 0);
        var evaluated = info.Stages.Single(s => s.Name == "evaluate").Eval;
        Assert.True(evaluated.Perplexity > 1 && evaluated.HasKlToTeacher);
        Assert.Equal("staged-student:1", info.Artifact);

        var artifact = await registry.GetAsync(new GetArtifactRequest { Ref = "staged-student@candidate" }, deadline: DateTime.UtcNow + Timeout);
        Assert.Equal(ArtifactKind.Adapter, artifact.Manifest.Kind);
        Assert.Equal(("extract", "staged"), (artifact.Manifest.Lineage.Method, artifact.Manifest.Lineage.RunId));
        Assert.Equal(evaluated.Perplexity, artifact.Manifest.Lineage.Metrics["perplexity"], 9);
        Assert.True(File.Exists(Path.Combine(mesh.RunsDirectory, "staged", "eval.json")));
    }

    [Fact]
    public async Task RestartedTrainer_KeepsFinishedStages_AndResumesTheRunningOne()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var (first, channel) = await mesh.StartTrainerAsync();
        var spec = mesh.Yaml(30) + "\nstages: [precompute, train]\nmesh: { teacher: \"http://teacher\" }\n";
        await new TrainerService.TrainerServiceClient(channel).StartAsync(new StartRequest { RunId = "halfway", ConfigYaml = spec }, deadline: DateTime.UtcNow + Timeout);
        using (var call = new TrainerService.TrainerServiceClient(channel).Watch(new WatchRequest { RunId = "halfway" }, deadline: DateTime.UtcNow + Timeout))
        {
            await foreach (var e in call.ResponseStream.ReadAllAsync())
            {
                if (e.Stage is null && e.Step >= 3)
                    break;
            }
        }

        var before = (await new TrainerService.TrainerServiceClient(channel).ListAsync(new ListRequest(), deadline: DateTime.UtcNow + Timeout)).Runs.Single().Stages.Single(s => s.Name == "precompute");
        Assert.Equal(RunState.Succeeded, before.State);
        await mesh.StopAsync(first);
        var (_, again) = await mesh.StartTrainerAsync();
        var client = new TrainerService.TrainerServiceClient(again);
        RunInfo info;
        do
        {
            await Task.Delay(100);
            info = (await client.ListAsync(new ListRequest(), deadline: DateTime.UtcNow + Timeout)).Runs.Single();
        }
        while (info.State == RunState.Running);

        Assert.Equal(RunState.Succeeded, info.State);
        // Precompute finished before the restart and was not run again: the same record, times included.
        Assert.Equal(before, info.Stages.Single(s => s.Name == "precompute"));
        Assert.Single(File.ReadAllLines(Path.Combine(mesh.RunsDirectory, "halfway", "provenance.jsonl")), l => l.Contains("\"resumed\""));
        var steps = File.ReadAllLines(Path.Combine(mesh.RunsDirectory, "halfway", "metrics.jsonl"))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), steps);
    }
}
