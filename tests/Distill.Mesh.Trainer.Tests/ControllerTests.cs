using Distill.Mesh.Contracts.Runs.V1;
using Grpc.Core;
using Grpc.Net.Client;
using TrainerApi = Distill.Mesh.Contracts.Trainer.V1;

namespace Distill.Mesh.Trainer.Tests;

public class ControllerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    private static DateTime Deadline => DateTime.UtcNow + Timeout;

    private static string Spec(MeshFixture mesh, int steps, string extra = "") =>
        mesh.Yaml(steps) + $"\nmesh: {{ trainer: \"http://trainer\", teacher: \"http://teacher\" }}\n{extra}";

    private static async Task<List<RunEvent>> WatchAll(RunsService.RunsServiceClient client, string runId, Func<RunEvent, Task>? onEvent = null)
    {
        var events = new List<RunEvent>();
        using var call = client.Watch(new WatchRunRequest { RunId = runId }, deadline: Deadline);
        await foreach (var e in call.ResponseStream.ReadAllAsync())
        {
            events.Add(e);
            if (onEvent is not null)
                await onEvent(e);
        }

        return events;
    }

    [Fact]
    public async Task SubmittedRun_GoesThroughTrainerAndTeacher_StageByStage_AndIsListed()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var (_, trainer) = await mesh.StartTrainerAsync();
        var client = new RunsService.RunsServiceClient(await mesh.StartControllerAsync(new Dictionary<string, GrpcChannel> { ["http://trainer"] = trainer }));

        var run = await client.SubmitAsync(new SubmitRequest { RunId = "via-controller", SpecYaml = Spec(mesh, 4) }, deadline: Deadline);
        var events = await WatchAll(client, run.RunId);
        var got = await client.GetAsync(new GetRunRequest { RunId = run.RunId }, deadline: Deadline);
        var list = await client.ListAsync(new ListRunsRequest(), deadline: Deadline);

        Assert.Equal(RunEvent.EventOneofCase.Snapshot, events[0].EventCase);
        Assert.Equal(RunPhase.Succeeded, events[^1].Phase);
        Assert.Equal(RunEvent.EventOneofCase.Snapshot, events[^1].EventCase);
        Assert.Equal([1, 2, 3, 4], events.Where(e => e.EventCase == RunEvent.EventOneofCase.Train).Select(e => e.Train.Step).Distinct());
        Assert.Contains(events, e => e.EventCase == RunEvent.EventOneofCase.Transition && e.Stage == "train" && e.Transition.State == StageState.Running);
        Assert.Equal(RunPhase.Succeeded, got.Phase);
        Assert.Equal(["train"], got.Stages.Select(s => s.Name));
        Assert.Equal((StageState.Succeeded, 4L), (got.Stages[0].State, got.Stages[0].Done));
        Assert.Contains("teacher cache hits", got.Reason);
        Assert.Equal(run.SpecSha256, got.SpecSha256);
        Assert.Single(list.Runs, r => r.RunId == "via-controller");
        Assert.Equal(4, File.ReadAllLines(Path.Combine(got.OutputDir, "metrics.jsonl")).Length);
    }

    [Theory]
    [InlineData("trainign: { max_steps: 3 }", "did you mean 'training'?")]
    [InlineData("student: { model: \"/no/such/model\" }", "student.model: no folder at '/no/such/model'")]
    [InlineData("training: { max_steps: many }", "training.max_steps")]
    [InlineData("loss: { kind: fkl, temperature: -1 }", "loss.temperature: -1 is out of range")]
    [InlineData("x: &x [*x]", "anchors")]
    [InlineData("stages: [train, train]", "names a stage twice")]
    public async Task Submit_BadSpec_IsInvalidArgumentNamingTheField_AndCreatesNothing(string bad, string expected)
    {
        await using var mesh = await MeshFixture.StartAsync();
        var (_, trainer) = await mesh.StartTrainerAsync();
        var client = new RunsService.RunsServiceClient(await mesh.StartControllerAsync(new Dictionary<string, GrpcChannel> { ["http://trainer"] = trainer }));
        // The bad key replaces the good one of the same name (a second one would be a duplicate key).
        var key = bad.Split(':')[0];
        var spec = string.Join("\n", Spec(mesh, 2).Split('\n').Where(l => !l.TrimStart().StartsWith(key + ":", StringComparison.Ordinal))) + "\n" + bad + "\n";

        var error = await Assert.ThrowsAsync<RpcException>(() => client.SubmitAsync(new SubmitRequest { RunId = "bad", SpecYaml = spec }, deadline: Deadline).ResponseAsync);
        var overridden = await Assert.ThrowsAsync<RpcException>(() => client.SubmitAsync(new SubmitRequest { RunId = "bad", SpecYaml = Spec(mesh, 2), Overrides = { "training.batch_size=0" } }, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains(expected, error.Status.Detail);
        Assert.Equal(StatusCode.InvalidArgument, overridden.StatusCode);
        Assert.Contains("training.batch_size: 0 is out of range", overridden.Status.Detail);
        Assert.Empty((await client.ListAsync(new ListRunsRequest(), deadline: Deadline)).Runs);
        Assert.Empty((await new TrainerApi.TrainerService.TrainerServiceClient(trainer).ListAsync(new TrainerApi.ListRequest(), deadline: Deadline)).Runs);
        Assert.False(Directory.Exists(mesh.ControllerDirectory) && Directory.EnumerateFiles(mesh.ControllerDirectory).Any());
        Assert.False(Directory.Exists(Path.Combine(mesh.RunsDirectory, "bad")));
    }

    [Fact]
    public async Task Resubmission_SameSpecIsTheSameRun_AnotherSpecIsAlreadyExists()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var (_, trainer) = await mesh.StartTrainerAsync();
        var client = new RunsService.RunsServiceClient(await mesh.StartControllerAsync(new Dictionary<string, GrpcChannel> { ["http://trainer"] = trainer }));

        var first = await client.SubmitAsync(new SubmitRequest { RunId = "again", SpecYaml = Spec(mesh, 2) }, deadline: Deadline);
        // The same run however it is written: reordered keys and an override that says what the file says.
        var same = await client.SubmitAsync(new SubmitRequest { RunId = "again", SpecYaml = "seed: 5\n" + Spec(mesh, 2).Replace("seed: 5\n", ""), Overrides = { "training.max_steps=2" } }, deadline: Deadline);
        var other = await Assert.ThrowsAsync<RpcException>(() => client.SubmitAsync(new SubmitRequest { RunId = "again", SpecYaml = Spec(mesh, 2), Overrides = { "loss.kind=rkl" } }, deadline: Deadline).ResponseAsync);
        await WatchAll(client, "again");

        Assert.Equal(first.SpecSha256, same.SpecSha256);
        Assert.False(first.Resubmitted);
        Assert.True(same.Resubmitted);
        Assert.Equal(StatusCode.AlreadyExists, other.StatusCode);
        Assert.Contains("exists with another spec", other.Status.Detail);
        Assert.Single((await client.ListAsync(new ListRunsRequest(), deadline: Deadline)).Runs);
        Assert.Single((await new TrainerApi.TrainerService.TrainerServiceClient(trainer).ListAsync(new TrainerApi.ListRequest(), deadline: Deadline)).Runs);
    }

    [Fact]
    public async Task RestartedMesh_ListsWatchesAndCancelsTheRunsItHad_IncludingOneStillTraining()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var (trainerApp, trainer) = await mesh.StartTrainerAsync();
        var (controllerApp, controller) = await mesh.StartControllerAppAsync(new Dictionary<string, GrpcChannel> { ["http://trainer"] = trainer });
        var client = new RunsService.RunsServiceClient(controller);
        await client.SubmitAsync(new SubmitRequest { RunId = "short", SpecYaml = Spec(mesh, 2) }, deadline: Deadline);
        await WatchAll(client, "short");
        await client.SubmitAsync(new SubmitRequest { RunId = "long", SpecYaml = Spec(mesh, 2000) }, deadline: Deadline);
        using (var call = client.Watch(new WatchRunRequest { RunId = "long" }, deadline: Deadline))
        {
            await foreach (var e in call.ResponseStream.ReadAllAsync())
            {
                if (e.EventCase == RunEvent.EventOneofCase.Train && e.Train.Step >= 2)
                    break;
            }
        }

        // `distill up` stops (controller and trainer), then starts again on the same folders.
        await mesh.StopAsync(controllerApp);
        await mesh.StopAsync(trainerApp);
        var (_, trainerAgain) = await mesh.StartTrainerAsync();
        client = new RunsService.RunsServiceClient(await mesh.StartControllerAsync(new Dictionary<string, GrpcChannel> { ["http://trainer"] = trainerAgain }));

        var listed = (await client.ListAsync(new ListRunsRequest(), deadline: Deadline)).Runs;
        Assert.Equal(["long", "short"], listed.Select(r => r.RunId));
        Assert.Equal(RunPhase.Succeeded, listed.Single(r => r.RunId == "short").Phase);
        Assert.Equal(RunPhase.Running, listed.Single(r => r.RunId == "long").Phase); // resumed by the trainer
        var cancelled = false;
        var events = await WatchAll(client, "long", async e =>
        {
            if (!cancelled && e.EventCase == RunEvent.EventOneofCase.Train && e.Train.Step > 0)
            {
                cancelled = true;
                await client.CancelAsync(new CancelRunRequest { RunId = "long" }, deadline: Deadline);
            }
        });

        Assert.True(cancelled);
        Assert.Equal(RunPhase.Cancelled, events[^1].Phase);
        Assert.Equal(RunPhase.Cancelled, (await client.GetAsync(new GetRunRequest { RunId = "long" }, deadline: Deadline)).Phase);
    }

    [Fact]
    public async Task UnreachableOrSilentTrainer_FailsSubmitNamingTheAddress_WithinItsDeadline_AndCreatesNothing()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var silent = await mesh.StartSilentTrainerAsync();
        var client = new RunsService.RunsServiceClient(await mesh.StartControllerAsync(new Dictionary<string, GrpcChannel> { ["http://silent"] = silent },
            new() { ["Controller:CallTimeout"] = "00:00:02" }));

        var unreachable = await Assert.ThrowsAsync<RpcException>(() => client.SubmitAsync(new SubmitRequest { RunId = "a", SpecYaml = Spec(mesh, 2).Replace("http://trainer", "http://nowhere:7102") }, deadline: Deadline).ResponseAsync);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var timedOut = await Assert.ThrowsAsync<RpcException>(() => client.SubmitAsync(new SubmitRequest { RunId = "b", SpecYaml = Spec(mesh, 2).Replace("http://trainer", "http://silent") }, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, unreachable.StatusCode);
        Assert.Contains("the trainer at http://nowhere:7102 is unreachable", unreachable.Status.Detail);
        Assert.True(timedOut.StatusCode == StatusCode.DeadlineExceeded, timedOut.Status.ToString());
        Assert.Contains("the trainer at http://silent did not answer in time", timedOut.Status.Detail);
        Assert.InRange(watch.Elapsed.TotalSeconds, 1.5, 30);
        Assert.Empty((await client.ListAsync(new ListRunsRequest(), deadline: Deadline)).Runs);
    }
}
