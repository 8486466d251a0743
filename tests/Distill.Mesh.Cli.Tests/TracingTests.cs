using System.Diagnostics;
using Distill.Mesh.Cli.Hosting;
using Distill.Mesh.Controller.Extensions;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Testing;
using Distill.Mesh.Trainer.Extensions;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace Distill.Mesh.Cli.Tests;

public sealed class TracingTests : IDisposable
{
    private readonly TempFolder _dir = new();

    [Fact]
    public async Task ARunsTrace_LinksCliControllerTrainerTeacherAndRedis()
    {
        using var redis = new RedisServer();
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder()
            .AddSource(MeshTelemetry.Name, "Grpc.Net.Client")
            .AddAspNetCoreInstrumentation()
            .AddHttpClientInstrumentation()
            .AddInMemoryExporter(spans)
            .Build();
        using (var teacher = TinyModels.Create("llama", 13))
            TinyModels.SaveWithByteTokenizer(teacher, _dir.Combine("teacher"));
        using (var student = TinyModels.Create("qwen2", 14))
            TinyModels.SaveWithByteTokenizer(student, _dir.Combine("student"));
        File.WriteAllLines(_dir.Combine("data.jsonl"), Enumerable.Range(0, 8).Select(i => $"{{\"text\": \"traced sample {i}\"}}"));
        File.WriteAllText(_dir.Combine("run.yaml"), """
            recipe: kd
            student: { model: student }
            teachers: [ { model: teacher } ]
            signal: { format: topk, k: 8 }
            dataset: { path: data.jsonl, max_length: 24, eval_fraction: 0 }
            training: { max_steps: 2, batch_size: 4 }
            """);

        var (teacherApp, teacherAddress) = await ServiceHost.StartTeacherAsync(_dir.Combine("teacher"), null, 0, redis.RelaxedConnectionString, quiet: true, default);
        var (trainerApp, trainerAddress) = await ServiceHost.StartAsync(0, b => b.AddTrainerService(), a => a.MapTrainerService(), new Dictionary<string, string?> { ["Trainer:RunsDirectory"] = _dir.Combine("runs") }, true, default);
        var (controllerApp, controllerAddress) = await ServiceHost.StartAsync(0, b => b.AddControllerService(), a => a.MapControllerService(),
            new Dictionary<string, string?> { ["Controller:RunsDirectory"] = _dir.Combine("controller"), ["Controller:Trainer"] = trainerAddress }, true, default);
        try
        {
            var (code, output, error) = await CliRunner.Run("run", "submit", _dir.Combine("run.yaml"), "--controller", controllerAddress, "--trainer", trainerAddress,
                "--teacher", teacherAddress, "--run-id", "traced", "--watch");
            Assert.True(code == 0, error + output);
        }
        finally
        {
            foreach (var app in new[] { controllerApp, trainerApp, teacherApp })
            {
                await app.StopAsync();
                await app.DisposeAsync();
            }
        }

        tracer.ForceFlush();
        List<Activity> snapshot;
        lock (spans)
            snapshot = [.. spans];
        var byId = snapshot.GroupBy(s => s.SpanId).ToDictionary(g => g.Key, g => g.First());
        // Other tests of the process submit runs too: this run's root is the one with its id.
        var root = snapshot.Single(s => s.DisplayName == "cli.run.submit" && (string?)s.GetTagItem("distill.run_id") == "traced");
        var redisSpan = snapshot.FirstOrDefault(s => s.DisplayName.StartsWith("redis", StringComparison.Ordinal) && s.TraceId == root.TraceId);
        Assert.True(redisSpan is not null, $"no Redis span in the run's trace; spans: {string.Join(", ", snapshot.Where(s => s.TraceId == root.TraceId).Select(s => s.DisplayName).Distinct())}");

        // Walk from the Redis call up to the CLI's root and name what the path crosses.
        var path = new List<string>();
        for (var span = redisSpan; span is not null; span = byId.GetValueOrDefault(span.ParentSpanId))
            path.Add(span.DisplayName);
        Assert.True(path[^1] == "cli.run.submit", $"the trace breaks: {string.Join(" <- ", path)}");
        var joined = string.Join(" <- ", path);
        Assert.Contains("RunsService/Submit", joined);
        Assert.Contains("trainer.run", joined);
        Assert.Contains("TeacherService/Score", joined);
    }

    public void Dispose() => _dir.Dispose();
}
