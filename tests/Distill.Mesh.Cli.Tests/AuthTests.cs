using Distill.Mesh.Cli.Hosting;
using Distill.Mesh.Controller.Extensions;
using Distill.Mesh.Testing;
using Distill.Mesh.Teacher.Extensions;
using Distill.Mesh.Trainer.Extensions;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Distill.Mesh.Cli.Tests;

/// <summary>Mesh:AuthScope=all: the token guards reads and the teacher's compute too; the services' own calls carry it; health stays open.</summary>
public sealed class AuthTests : IDisposable
{
    private const string Token = "0123456789abcdef0123456789abcdef";
    private readonly TempFolder _dir = new();

    [Fact]
    public async Task ScopeAll_RefusesReadsAndScoringWithoutTheToken_WhileARunWithItGoesThroughEveryService()
    {
        using (var teacher = TinyModels.Create("llama", 41))
            TinyModels.SaveWithByteTokenizer(teacher, _dir.Combine("teacher"));
        using (var student = TinyModels.Create("qwen2", 42))
            TinyModels.SaveWithByteTokenizer(student, _dir.Combine("student"));
        File.WriteAllLines(_dir.Combine("data.jsonl"), Enumerable.Range(0, 8).Select(i => $"{{\"text\": \"guarded sample {i}\"}}"));
        File.WriteAllText(_dir.Combine("run.yaml"), """
            recipe: kd
            student: { model: student }
            teachers: [ { model: teacher } ]
            signal: { format: topk, k: 8 }
            dataset: { path: data.jsonl, max_length: 24, eval_fraction: 0 }
            training: { max_steps: 2, batch_size: 4 }
            """);
        var auth = new Dictionary<string, string?> { ["Mesh:AuthToken"] = Token, ["Mesh:AuthScope"] = "all" };
        Dictionary<string, string?> With(string key, string value) => new(auth) { [key] = value };
        var (teacherApp, teacherAddress) = await ServiceHost.StartAsync(0, b => b.AddTeacherService(), a => a.MapTeacherService(), With("Teacher:Model", _dir.Combine("teacher")), true, default);
        var (trainerApp, trainerAddress) = await ServiceHost.StartAsync(0, b => b.AddTrainerService(), a => a.MapTrainerService(), With("Trainer:RunsDirectory", _dir.Combine("runs")), true, default);
        var controllerSettings = With("Controller:RunsDirectory", _dir.Combine("controller"));
        controllerSettings["Controller:Trainer"] = trainerAddress;
        var (controllerApp, controllerAddress) = await ServiceHost.StartAsync(0, b => b.AddControllerService(), a => a.MapControllerService(), controllerSettings, true, default);
        try
        {
            var (listCode, _, listError) = await CliRunner.Run("run", "ls", "--controller", controllerAddress);
            using var open = GrpcChannel.ForAddress(teacherAddress);
            var describe = await Assert.ThrowsAsync<RpcException>(() => new Contracts.Teacher.V1.TeacherService.TeacherServiceClient(open).DescribeAsync(new Contracts.Teacher.V1.DescribeRequest()).ResponseAsync);
            var health = await new Health.HealthClient(open).CheckAsync(new HealthCheckRequest { Service = "readiness" });
            var (code, output, error) = await CliRunner.Run("run", "submit", _dir.Combine("run.yaml"), "--controller", controllerAddress, "--trainer", trainerAddress,
                "--teacher", teacherAddress, "--run-id", "guarded", "--token", Token, "--watch");
            var (listedCode, listed, _) = await CliRunner.Run("run", "ls", "--controller", controllerAddress, "--token", Token);

            Assert.Equal(1, listCode);
            Assert.Contains("wants a bearer token", listError);
            Assert.Equal(StatusCode.Unauthenticated, describe.StatusCode);
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
            // Controller → trainer → teacher: each internal call carried the token.
            Assert.True(code == 0, error + output);
            Assert.Contains("guarded: succeeded", output);
            Assert.Equal(0, listedCode);
            Assert.Contains("guarded", listed);
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

    [Fact]
    public async Task ScopeAll_WithoutAToken_StopsTheServiceAtStart()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => ServiceHost.StartAsync(0, b => b.AddTrainerService(), a => a.MapTrainerService(),
            new Dictionary<string, string?> { ["Mesh:AuthScope"] = "all", ["Trainer:RunsDirectory"] = _dir.Combine("runs") }, true, default));

        Assert.Contains("Mesh:AuthScope 'all' needs a token", error.Message);
    }

    public void Dispose() => _dir.Dispose();
}
