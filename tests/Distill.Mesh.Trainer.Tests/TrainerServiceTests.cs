using Distill.Mesh.Contracts.Trainer.V1;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Recipes;
using Grpc.Core;
using Grpc.Net.Client;

namespace Distill.Mesh.Trainer.Tests;

public class TrainerServiceTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    private static async Task<List<Contracts.Trainer.V1.TrainEvent>> WatchAll(GrpcChannel channel, string runId, Func<Contracts.Trainer.V1.TrainEvent, Task>? onEvent = null)
    {
        var client = new TrainerService.TrainerServiceClient(channel);
        using var call = client.Watch(new WatchRequest { RunId = runId }, deadline: DateTime.UtcNow + Timeout);
        var events = new List<Contracts.Trainer.V1.TrainEvent>();
        await foreach (var e in call.ResponseStream.ReadAllAsync())
        {
            events.Add(e);
            if (onEvent is not null)
                await onEvent(e);
        }

        return events;
    }

    private static List<double> Losses(string folder) =>
        File.ReadAllLines(Path.Combine(folder, "metrics.jsonl")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToList();

    [Fact]
    public async Task Run_ThroughTrainerAndTeacherServices_GivesTheInProcessLosses()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var (_, channel) = await mesh.StartTrainerAsync();
        var client = new TrainerService.TrainerServiceClient(channel);

        var request = new StartRequest { RunId = "kd-1", ConfigYaml = mesh.Yaml(5), Overrides = { "mesh.teacher=http://teacher" } };
        var started = await client.StartAsync(request, deadline: DateTime.UtcNow + Timeout);
        var events = await WatchAll(channel, "kd-1");
        var again = await client.StartAsync(request, deadline: DateTime.UtcNow + Timeout);
        var other = await Assert.ThrowsAsync<RpcException>(() => client.StartAsync(new StartRequest { RunId = "kd-1", ConfigYaml = mesh.Yaml(6) }, deadline: DateTime.UtcNow + Timeout).ResponseAsync);

        Assert.Equal(RunState.Succeeded, events[^1].State);
        Assert.Equal([1, 2, 3, 4, 5], events.Where(e => e.Stage is null && e.State == RunState.Running).Select(e => e.Step).Distinct());
        Assert.Contains("teacher cache hits", events[^1].Message);
        Assert.Equal(RunState.Succeeded, again.State); // idempotent: the existing run, not a second one
        Assert.Equal(StatusCode.AlreadyExists, other.StatusCode); // the same id with another spec is refused, the record kept
        Assert.Equal(started.SpecSha256, again.SpecSha256);

        // The same config in process, teacher loaded locally.
        var yamlPath = mesh.Dir.Combine("local.yaml");
        File.WriteAllText(yamlPath, mesh.Yaml(5));
        var (config, _) = TrainConfigLoader.Load(yamlPath, [$"output_dir={mesh.Dir.Combine("local")}"]);
        await KdRecipe.RunAsync(config, RerunPolicy.Resume, null, default);
        var expected = Losses(mesh.Dir.Combine("local"));
        var actual = Losses(started.OutputDir);
        Assert.Equal(expected.Count, actual.Count);
        // Within 1e-5 (float32 steps by different but equal maths: a dense local signal, a top-k remote
        // one); a tolerance, not rounding to 5 places, which fails on values either side of a boundary.
        for (var i = 0; i < expected.Count; i++)
            Assert.Equal(expected[i], actual[i], 1e-5);
        var list = await client.ListAsync(new ListRequest(), deadline: DateTime.UtcNow + Timeout);
        Assert.Single(list.Runs, r => r.RunId == "kd-1");
    }

    /// <summary>Runs a config through trainer → teacher service and in process (teacher loaded); returns both output folders.</summary>
    private static async Task<(string Remote, string Local)> BothWays(MeshFixture mesh, string runId, string[] overrides)
    {
        var (_, channel) = await mesh.StartTrainerAsync();
        var request = new StartRequest { RunId = runId, ConfigYaml = mesh.Yaml(4), Overrides = { "mesh.teacher=http://teacher" } };
        request.Overrides.AddRange(overrides);
        var started = await new TrainerService.TrainerServiceClient(channel).StartAsync(request, deadline: DateTime.UtcNow + Timeout);
        var events = await WatchAll(channel, runId);
        Assert.True(events[^1].State == RunState.Succeeded, events[^1].Message);

        var yamlPath = mesh.Dir.Combine($"{runId}.yaml");
        File.WriteAllText(yamlPath, mesh.Yaml(4));
        var (config, _) = TrainConfigLoader.Load(yamlPath, [.. overrides, $"output_dir={mesh.Dir.Combine(runId + "-local")}"]);
        var result = await RecipeRunner.RunAsync(config, RerunPolicy.Resume, null, default);
        Assert.True(result.Completed);
        return (started.OutputDir, mesh.Dir.Combine(runId + "-local"));
    }

    private static void AssertSameLosses(string expectedFolder, string actualFolder)
    {
        var expected = Losses(expectedFolder);
        var actual = Losses(actualFolder);
        Assert.Equal(expected.Count, actual.Count);
        // Within 1e-5 (float32 steps by different but equal maths: a dense local signal, a top-k remote
        // one); a tolerance, not rounding to 5 places, which fails on values either side of a boundary.
        for (var i = 0; i < expected.Count; i++)
            Assert.Equal(expected[i], actual[i], 1e-5);
    }

    [Fact]
    public async Task TwoTeacherMixture_ThroughTwoTeacherServices_EqualsTheInProcessMixture()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var second = mesh.Dir.Combine("teacher2");
        using (var model = Distill.Mesh.Testing.TinyModels.Create("llama", 33))
            Distill.Mesh.Testing.TinyModels.SaveWithByteTokenizer(model, second);
        await mesh.StartTeacherAsync("http://teacher2", second);
        var (_, channel) = await mesh.StartTrainerAsync();
        var mixture = mesh.Yaml(4).Replace($"teachers: [ {{ model: \"{mesh.TeacherFolder}\" }} ]",
            $"teachers: [ {{ model: \"{mesh.TeacherFolder}\", weight: 3 }}, {{ model: \"{second}\", weight: 1 }} ]");
        Assert.Contains("weight: 3", mixture);
        // Each teacher sends all but one id with the tail (k = V − 1: the exact distribution), at full precision.
        var request = new StartRequest
        {
            RunId = "mixture",
            ConfigYaml = mixture,
            Overrides = { "teachers.0.endpoint=http://teacher", "teachers.1.endpoint=http://teacher2", "signal.k=261" },
        };

        var started = await new TrainerService.TrainerServiceClient(channel).StartAsync(request, deadline: DateTime.UtcNow + Timeout);
        var events = await WatchAll(channel, "mixture");
        var yamlPath = mesh.Dir.Combine("mixture.yaml");
        File.WriteAllText(yamlPath, mixture);
        var (config, _) = TrainConfigLoader.Load(yamlPath, ["signal.format=dense", $"output_dir={mesh.Dir.Combine("mixture-local")}"]);
        await RecipeRunner.RunAsync(config, RerunPolicy.Resume, null, default);

        Assert.True(events[^1].State == RunState.Succeeded, events[^1].Message);
        AssertSameLosses(mesh.Dir.Combine("mixture-local"), started.OutputDir);
        // One teacher alone gives other losses: the test tells the mixture from either teacher.
        var (alone, _) = TrainConfigLoader.Load(yamlPath, ["signal.format=dense", "teachers=[{model: " + second + "}]", $"output_dir={mesh.Dir.Combine("alone")}"]);
        await RecipeRunner.RunAsync(alone, RerunPolicy.Resume, null, default);
        Assert.NotEqual(Losses(mesh.Dir.Combine("alone"))[0], Losses(started.OutputDir)[0], 4);
    }

    [Fact]
    public async Task SeqKd_WithTheTeacherService_GeneratesTheInProcessSequences()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var prompts = mesh.Dir.Combine("prompts.jsonl");
        File.WriteAllLines(prompts, Enumerable.Range(0, 10).Select(i => $"{{\"prompt\": \"question {i}:\", \"completion\": \" answer {i}\"}}"));

        var (remote, local) = await BothWays(mesh, "seq-kd", ["recipe=seq_kd", $"dataset.path={prompts}", "generation.greedy=true", "generation.max_new_tokens=8"]);

        var teacherWrote = File.ReadAllLines(Path.Combine(remote, "seq_kd_train.jsonl"));
        Assert.Equal(10, teacherWrote.Length);
        Assert.Equal(File.ReadAllLines(Path.Combine(local, "seq_kd_train.jsonl")), teacherWrote);
        AssertSameLosses(local, remote);
    }

    [Fact]
    public async Task PackedKd_WithTheTeacherService_GivesTheInProcessLosses()
    {
        await using var mesh = await MeshFixture.StartAsync();

        var (remote, local) = await BothWays(mesh, "packed", ["dataset.packing=true"]);

        AssertSameLosses(local, remote);
    }

    [Fact]
    public async Task Cancel_StopsTheRunWithACheckpoint()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var (_, channel) = await mesh.StartTrainerAsync();
        var client = new TrainerService.TrainerServiceClient(channel);
        await client.StartAsync(new StartRequest { RunId = "long", ConfigYaml = mesh.Yaml(500) }, deadline: DateTime.UtcNow + Timeout);

        var cancelled = false;
        var events = await WatchAll(channel, "long", async e =>
        {
            if (!cancelled && e.Step >= 2)
            {
                cancelled = true;
                await client.CancelAsync(new CancelRequest { RunId = "long" }, deadline: DateTime.UtcNow + Timeout);
            }
        });

        Assert.Equal(RunState.Cancelled, events[^1].State);
        Assert.True(events[^1].Step < 500);
        Assert.NotEmpty(Directory.GetDirectories(Path.Combine(mesh.RunsDirectory, "long", "checkpoints")));
    }

    [Fact]
    public async Task RestartedTrainer_ResumesInterruptedRuns_WithNoStepSkippedOrRepeated()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var (first, channel) = await mesh.StartTrainerAsync();
        await new TrainerService.TrainerServiceClient(channel).StartAsync(new StartRequest { RunId = "resume", ConfigYaml = mesh.Yaml(40), Overrides = { "mesh.teacher=http://teacher" } }, deadline: DateTime.UtcNow + Timeout);
        await WatchAll(channel, "resume", async e =>
        {
            if (e.Step == 5)
                await Task.Run(() => mesh.StopAsync(first)); // the trainer goes down mid-run
        }).ContinueWith(_ => { });

        var state = System.Text.Json.JsonSerializer.Deserialize<Runs.RunRecord>(File.ReadAllText(Path.Combine(mesh.RunsDirectory, "resume", "state.json")))!;
        Assert.Equal(Runs.RunStatus.Interrupted, state.Status); // the first trainer really stopped mid-run

        var (_, restarted) = await mesh.StartTrainerAsync();
        var events = await WatchAll(restarted, "resume");

        Assert.Equal(RunState.Succeeded, events[^1].State);
        var steps = File.ReadAllLines(Path.Combine(mesh.RunsDirectory, "resume", "metrics.jsonl"))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(1, 40).Select(i => (long)i), steps);
    }

    [Fact]
    public async Task MutatingCalls_NeedTheBearerTokenWhenConfigured()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var (_, channel) = await mesh.StartTrainerAsync(new() { ["Mesh:AuthToken"] = "s3cret" });
        var client = new TrainerService.TrainerServiceClient(channel);

        var error = await Assert.ThrowsAsync<RpcException>(() => client.StartAsync(new StartRequest { RunId = "x", ConfigYaml = mesh.Yaml(1) }, deadline: DateTime.UtcNow + Timeout).ResponseAsync);
        var list = await client.ListAsync(new ListRequest(), deadline: DateTime.UtcNow + Timeout);
        var started = await client.StartAsync(new StartRequest { RunId = "y", ConfigYaml = mesh.Yaml(1) }, new Metadata { { "authorization", "Bearer s3cret" } }, DateTime.UtcNow + Timeout);
        var bad = await Assert.ThrowsAsync<RpcException>(() => client.StartAsync(new StartRequest { RunId = "Bad Id", ConfigYaml = "x: 1" }, new Metadata { { "authorization", "Bearer s3cret" } }, DateTime.UtcNow + Timeout).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Empty(list.Runs);
        Assert.Equal("y", started.RunId);
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        await WatchAll(channel, "y");
    }
}
