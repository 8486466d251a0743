using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Contracts.Trainer.V1;
using Grpc.Core;

namespace Distill.Mesh.Trainer.Tests;

public class ControllerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task SubmittedRun_GoesThroughTrainerAndTeacher_AndIsListed()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var (_, trainer) = await mesh.StartTrainerAsync();
        var controller = await mesh.StartControllerAsync(new Dictionary<string, global::Grpc.Net.Client.GrpcChannel> { ["http://trainer"] = trainer });
        var client = new RunsService.RunsServiceClient(controller);
        var spec = mesh.Yaml(4) + "\nmesh: { trainer: \"http://trainer\", teacher: \"http://teacher\" }\n";

        var run = await client.SubmitAsync(new SubmitRequest { RunId = "via-controller", SpecYaml = spec }, deadline: DateTime.UtcNow + Timeout);
        var events = new List<RunEvent>();
        using (var call = client.Watch(new WatchRunRequest { RunId = run.RunId }, deadline: DateTime.UtcNow + Timeout))
        {
            await foreach (var e in call.ResponseStream.ReadAllAsync())
                events.Add(e);
        }

        var got = await client.GetAsync(new GetRunRequest { RunId = run.RunId }, deadline: DateTime.UtcNow + Timeout);
        var list = await client.ListAsync(new ListRunsRequest(), deadline: DateTime.UtcNow + Timeout);

        Assert.Equal(RunState.Succeeded, events[^1].Train.State);
        Assert.All(events, e => Assert.Equal("train", e.Stage));
        Assert.Equal(RunState.Succeeded, got.State);
        Assert.Equal(4, got.Step);
        Assert.Single(list.Runs, r => r.RunId == "via-controller");
        Assert.Equal(4, File.ReadAllLines(Path.Combine(got.OutputDir, "metrics.jsonl")).Length);
    }

    [Fact]
    public async Task Submit_WithoutTrainerAddress_IsInvalid()
    {
        await using var mesh = await MeshFixture.StartAsync();
        var controller = await mesh.StartControllerAsync(new Dictionary<string, global::Grpc.Net.Client.GrpcChannel>());

        var error = await Assert.ThrowsAsync<RpcException>(() => new RunsService.RunsServiceClient(controller)
            .SubmitAsync(new SubmitRequest { RunId = "x", SpecYaml = mesh.Yaml(1) }, deadline: DateTime.UtcNow + Timeout).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("mesh", error.Status.Detail);
    }
}
