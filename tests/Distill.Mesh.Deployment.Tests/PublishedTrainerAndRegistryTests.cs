using Distill.Mesh.Clients.Registry;
using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.Contracts.Trainer.V1;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Testing;
using Grpc.Core;

namespace Distill.Mesh.Deployment.Tests;

/// <summary>What the published services do beyond starting: the work that proves their folders are complete.</summary>
[Collection(PublishedCollection.Name)]
public class PublishedTrainerAndRegistryTests(PublishedServices published)
{
    private static readonly Dockerfile Docker = Dockerfile.Load();
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task PublishedTrainer_OnSigterm_CheckpointsItsRun_AndResumesItAfterARestart()
    {
        using var volumes = new TempFolder();
        using (var student = TinyModels.Create("llama", seed: 5))
            TinyModels.SaveWithByteTokenizer(student, volumes.Combine("student"));
        File.WriteAllLines(volumes.Combine("data.jsonl"), Enumerable.Range(0, 32).Select(i => $"{{\"text\": \"sample {i} {new string((char)('a' + i % 26), 3 + i % 7)}\"}}"));
        var yaml = $$"""
            recipe: sft
            student: { model: "{{volumes.Combine("student")}}" }
            dataset: { path: "{{volumes.Combine("data.jsonl")}}", max_length: 24, eval_fraction: 0 }
            training: { max_steps: 400, batch_size: 4, optimizer: { lr: 1.0e-3 } }
            """;
        var settings = new Dictionary<string, string> { ["Trainer__ShutdownGrace"] = "00:00:20" };

        long stoppedAt;
        await using (var trainer = ImageRun.Start(published, Docker, "trainer", volumes, settings))
        {
            await trainer.WaitReadyAsync(TimeSpan.FromSeconds(60));
            var client = new TrainerService.TrainerServiceClient(trainer.Channel);
            await client.StartAsync(new StartRequest { RunId = "long", ConfigYaml = yaml }, deadline: DateTime.UtcNow + Timeout);
            using (var watch = client.Watch(new WatchRequest { RunId = "long" }, deadline: DateTime.UtcNow + Timeout))
            {
                await foreach (var e in watch.ResponseStream.ReadAllAsync())
                {
                    if (e.Step >= 3)
                        break;
                }
            }

            Assert.Equal(0, await trainer.TerminateAsync(TimeSpan.FromSeconds(40)));
            var state = File.ReadAllText(volumes.Combine("var-lib-distill", "runs", "long", "state.json"));
            Assert.Contains("\"Status\":4", state.Replace(" ", "")); // Interrupted
            var checkpoints = Directory.GetDirectories(volumes.Combine("var-lib-distill", "runs", "long", "checkpoints"), "step-*");
            stoppedAt = long.Parse(Path.GetFileName(Assert.Single(checkpoints))["step-".Length..]);
            Assert.InRange(stoppedAt, 3, 399);
        }

        // A new pod on the same volume: the run resumes from its checkpoint and each step is logged once.
        await using (var trainer = ImageRun.Start(published, Docker, "trainer", volumes, settings))
        {
            await trainer.WaitReadyAsync(TimeSpan.FromSeconds(60));
            var client = new TrainerService.TrainerServiceClient(trainer.Channel);
            RunInfo info;
            do
            {
                await Task.Delay(200);
                info = (await client.ListAsync(new ListRequest(), deadline: DateTime.UtcNow + Timeout)).Runs.Single();
            }
            while (info.State == RunState.Running);

            Assert.Equal(RunState.Succeeded, info.State);
            var steps = File.ReadAllLines(volumes.Combine("var-lib-distill", "runs", "long", "metrics.jsonl"))
                .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()).ToList();
            Assert.Equal(Enumerable.Range(1, 400).Select(i => (long)i), steps);
        }
    }

    [Fact]
    public async Task PublishedRegistry_ValidatesAdaptersAgainstTheirBase_WithoutLibTorch()
    {
        using var volumes = new TempFolder();
        var baseFolder = volumes.Combine("models", "base");
        using (var model = TinyModels.Create("llama", seed: 3))
        {
            model.SavePretrained(baseFolder);
            LoraAdapter.Attach(model, LoraConfig.For(4, 8, "q_proj", "v_proj"), seed: 1);
            LoraAdapter.Save(model, LoraConfig.For(4, 8, "q_proj", "v_proj"), volumes.Combine("adapter"));
            LoraAdapter.Save(model, LoraConfig.For(4, 8, "q_proj", "v_proj", "k_proj"), volumes.Combine("bad-adapter"));
        }

        await using var registry = ImageRun.Start(published, Docker, "registry", volumes);
        await registry.WaitReadyAsync(TimeSpan.FromSeconds(60));
        var client = new RegistryClient(new RegistryService.RegistryServiceClient(registry.Channel));

        var pushedBase = await client.PushAsync(baseFolder, RegistryClient.ManifestOf(baseFolder, "base"));
        var adapter = await client.PushAsync(volumes.Combine("adapter"), RegistryClient.ManifestOf(volumes.Combine("adapter"), "lora", new Lineage { BaseModel = "base" }));
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.PushAsync(volumes.Combine("bad-adapter"),
            RegistryClient.ManifestOf(volumes.Combine("bad-adapter"), "lora", new Lineage { BaseModel = "base" })));

        Assert.Equal((ArtifactKind.Model, ArtifactKind.Adapter), (pushedBase.Manifest.Kind, adapter.Manifest.Kind));
        Assert.Contains("k_proj", refused.Status.Detail);
    }

    [Fact]
    public async Task PublishedService_TakesItsTokenFromAFile_AndRefusesToStartWithAnEmptyOne()
    {
        using var volumes = new TempFolder();
        File.WriteAllText(volumes.Combine("token"), "s3cret\n");
        await using (var controller = ImageRun.Start(published, Docker, "controller", volumes, new Dictionary<string, string> { ["Mesh__AuthTokenFile"] = volumes.Combine("token") }))
        {
            await controller.WaitReadyAsync(TimeSpan.FromSeconds(60));
            var runs = new Contracts.Runs.V1.RunsService.RunsServiceClient(controller.Channel);
            var error = await Assert.ThrowsAsync<RpcException>(() => runs.CancelAsync(new Contracts.Runs.V1.CancelRunRequest { RunId = "nope" }, deadline: DateTime.UtcNow + Timeout).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
            var withToken = await Assert.ThrowsAsync<RpcException>(() => runs.CancelAsync(new Contracts.Runs.V1.CancelRunRequest { RunId = "nope" },
                ServiceDefaults.MeshAuth.Headers("s3cret"), deadline: DateTime.UtcNow + Timeout).ResponseAsync);
            Assert.Equal(StatusCode.NotFound, withToken.StatusCode);
        }

        File.WriteAllText(volumes.Combine("empty"), "  \n");
        await using var refused = ImageRun.Start(published, Docker, "controller", volumes, new Dictionary<string, string> { ["Mesh__AuthTokenFile"] = volumes.Combine("empty") });
        for (var i = 0; i < 300 && !refused.HasExited; i++)
            await Task.Delay(100);
        Assert.True(refused.HasExited, "a service with an empty token file must not start");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("is empty", refused.Log);
    }
}
