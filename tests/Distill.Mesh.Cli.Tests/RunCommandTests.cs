using Distill.Mesh.Cli.Hosting;
using Distill.Mesh.Controller.Extensions;
using Distill.Mesh.Testing;
using Distill.Mesh.Trainer.Extensions;

namespace Distill.Mesh.Cli.Tests;

public sealed class RunCommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

    [Fact]
    public async Task SubmitWatchAndList_ThroughControllerTrainerAndTeacher_OnLoopback()
    {
        using (var teacher = TinyModels.Create("llama", 11))
            TinyModels.SaveWithByteTokenizer(teacher, _dir.Combine("teacher"));
        using (var student = TinyModels.Create("qwen2", 12))
            TinyModels.SaveWithByteTokenizer(student, _dir.Combine("student"));
        File.WriteAllLines(_dir.Combine("data.jsonl"), Enumerable.Range(0, 16).Select(i => $"{{\"text\": \"mesh sample {i}\"}}"));
        File.WriteAllText(_dir.Combine("run.yaml"), """
            recipe: kd
            student: { model: student }
            teachers: [ { model: teacher } ]
            signal: { format: topk, k: 16 }
            dataset: { path: data.jsonl, max_length: 32, eval_fraction: 0.2 }
            training: { max_steps: 3, batch_size: 4 }
            """);

        var (teacherApp, teacherAddress) = await ServiceHost.StartTeacherAsync(_dir.Combine("teacher"), null, 0, null, quiet: true, default);
        var (trainerApp, trainerAddress) = await ServiceHost.StartAsync(0, b => b.AddTrainerService(), a => a.MapTrainerService(), new Dictionary<string, string?> { ["Trainer:RunsDirectory"] = _dir.Combine("runs") }, true, default);
        var (controllerApp, controllerAddress) = await ServiceHost.StartAsync(0, b => b.AddControllerService(), a => a.MapControllerService(),
            new Dictionary<string, string?> { ["Controller:RunsDirectory"] = _dir.Combine("controller"), ["Controller:Trainer"] = trainerAddress }, true, default);
        try
        {
            var (code, output, error) = await CliRunner.Run("run", "submit", _dir.Combine("run.yaml"), "training.max_steps=4", "--controller", controllerAddress,
                "--trainer", trainerAddress, "--teacher", teacherAddress, "--run-id", "cli-run", "--watch");
            var (againCode, again, againError) = await CliRunner.Run("run", "submit", _dir.Combine("run.yaml"), "training.max_steps=4", "--controller", controllerAddress,
                "--trainer", trainerAddress, "--teacher", teacherAddress, "--run-id", "cli-run");
            var (_, listing, _) = await CliRunner.Run("run", "ls", "--controller", controllerAddress);
            var listed = (await CliRunner.Json("run", "ls", "--controller", controllerAddress, "--json")).AsArray();
            var (cancelCode, _, cancelError) = await CliRunner.Run("run", "cancel", "no-such-run", "--controller", controllerAddress);

            Assert.True(code == 0, error + output);
            Assert.Contains("submitted cli-run", output);
            Assert.Contains("cli-run: succeeded", output);
            Assert.Contains("step 4/4", error);
            Assert.True(againCode == 0, againError + again);
            Assert.Contains("run cli-run already exists with this spec (succeeded): nothing new was started", again);
            Assert.Contains("cli-run", listing);
            var run = Assert.Single(listed)!;
            Assert.Equal("cli-run", (string)run["run_id"]!);
            Assert.Equal("succeeded", (string)run["phase"]!);
            Assert.Contains($"| cli-run | succeeded | {(string)run["stage"]!}", listing);
            Assert.Equal(1, cancelCode);
            Assert.Contains($"NotFound from the controller at {controllerAddress}: no run 'no-such-run'", cancelError);
            Assert.Equal(4, File.ReadAllLines(_dir.Combine("runs", "cli-run", "metrics.jsonl")).Length);
        }
        finally
        {
            foreach (var app in new[] { controllerApp, trainerApp, teacherApp })
            {
                await app.StopAsync();
                await app.DisposeAsync();
            }
        }
    }

    public void Dispose() => _dir.Dispose();
}
