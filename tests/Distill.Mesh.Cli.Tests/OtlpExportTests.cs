using System.Collections.Concurrent;
using Distill.Mesh.Cli.Hosting;
using Distill.Mesh.Cli.Tests.Otlp;
using Distill.Mesh.Cli.Tests.Otlp.Metrics;
using Distill.Mesh.Cli.Tests.Otlp.Traces;
using Distill.Mesh.Controller.Extensions;
using Distill.Mesh.Testing;
using Distill.Mesh.Teacher.Extensions;
using Distill.Mesh.Trainer.Extensions;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Distill.Mesh.Cli.Tests;

/// <summary>
/// OTEL_EXPORTER_OTLP_ENDPOINT switches OTLP export on: an in-process OTLP/gRPC receiver gets a
/// run's spans from controller, trainer and teacher as one tree (under the trace id the CLI
/// prints), each with the run id, and the services' metrics.
/// </summary>
[Collection(nameof(ProcessMetrics))]
public sealed class OtlpExportTests : IDisposable
{
    private readonly TempFolder _dir = new();

    [Fact]
    public async Task ARunsSpansAndMetrics_ReachAnOtlpReceiver_AsOneTreeCarryingTheRunId()
    {
        var receiver = new Receiver();
        await using var collector = await StartReceiverAsync(receiver);
        var endpoint = collector.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using (var teacher = TinyModels.Create("llama", 31))
            TinyModels.SaveWithByteTokenizer(teacher, _dir.Combine("teacher"));
        using (var student = TinyModels.Create("qwen2", 32))
            TinyModels.SaveWithByteTokenizer(student, _dir.Combine("student"));
        File.WriteAllLines(_dir.Combine("data.jsonl"), Enumerable.Range(0, 8).Select(i => $"{{\"text\": \"exported sample {i}\"}}"));
        File.WriteAllText(_dir.Combine("run.yaml"), """
            recipe: kd
            student: { model: student }
            teachers: [ { model: teacher } ]
            signal: { format: topk, k: 8 }
            dataset: { path: data.jsonl, max_length: 24, eval_fraction: 0 }
            training: { max_steps: 3, batch_size: 4 }
            """);
        var otlp = new Dictionary<string, string?> { ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint, ["OTEL_METRIC_EXPORT_INTERVAL"] = "500", ["OTEL_BSP_SCHEDULE_DELAY"] = "200" };
        Dictionary<string, string?> With(params (string Key, string Value)[] settings)
        {
            var all = new Dictionary<string, string?>(otlp);
            foreach (var (key, value) in settings)
                all[key] = value;
            return all;
        }

        var (teacherApp, teacherAddress) = await ServiceHost.StartAsync(0, b => b.AddTeacherService(), a => a.MapTeacherService(), With(("Teacher:Model", _dir.Combine("teacher"))), true, default);
        var (trainerApp, trainerAddress) = await ServiceHost.StartAsync(0, b => b.AddTrainerService(), a => a.MapTrainerService(), With(("Trainer:RunsDirectory", _dir.Combine("runs"))), true, default);
        var (controllerApp, controllerAddress) = await ServiceHost.StartAsync(0, b => b.AddControllerService(), a => a.MapControllerService(),
            With(("Controller:RunsDirectory", _dir.Combine("controller")), ("Controller:Trainer", trainerAddress)), true, default);
        string output;
        try
        {
            var (code, stdout, error) = await CliRunner.Run("run", "submit", _dir.Combine("run.yaml"), "--controller", controllerAddress, "--trainer", trainerAddress,
                "--teacher", teacherAddress, "--run-id", "exported", "--watch");
            Assert.True(code == 0, error + stdout);
            output = stdout;
            Assert.Contains("exported: trace ", error);
        }
        finally
        {
            // Stopping a host flushes its exporters.
            foreach (var app in new[] { controllerApp, trainerApp, teacherApp })
            {
                await app.StopAsync();
                await app.DisposeAsync();
            }
        }

        var traceId = output.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("trace ", StringComparison.Ordinal))["trace ".Length..];
        // One process hosts all three services, and each host's tracer provider sees every span of
        // the process (each exports it under its own service.name): a span counts once, by id.
        var spans = receiver.Spans.Where(s => s.TraceId == traceId).DistinctBy(s => s.SpanId).ToList();
        var names = string.Join(", ", spans.Select(s => $"{s.Service}:{s.Name}").Distinct().Order());
        Assert.True(spans.Count >= 6, $"trace {traceId} has {spans.Count} spans: {names}; all traces: {receiver.Spans.Select(s => s.TraceId).Distinct().Count()}");
        Assert.Equal(["distill-controller", "distill-teacher", "distill-trainer"], receiver.Spans.Select(s => s.Service).Distinct().Order());
        // The server side of each hop: controller, trainer, teacher.
        foreach (var expected in new[] { "RunsService/Submit", "controller.submit", "TrainerService/Start", "trainer.run", "trainer.stage.train", "TeacherService/Score" })
            Assert.True(spans.Any(s => s.Name.Contains(expected, StringComparison.Ordinal)), $"no span '{expected}' in the run's trace: {names}");
        // One tree: every parent is in the trace, but for the root's, which is the CLI's own span.
        var ids = spans.Select(s => s.SpanId).ToHashSet();
        Assert.Single(spans.Select(s => s.ParentSpanId).Where(p => !ids.Contains(p)).Distinct());
        Assert.All(spans, s => Assert.True(s.Attributes.GetValueOrDefault("distill.run_id") == "exported", $"{s.Service}:{s.Name} lacks distill.run_id"));

        var metrics = receiver.Metrics.Keys.ToList();
        foreach (var expected in new[] { "distill.train.loss", "distill.train.step.duration", "gen_ai.server.request.duration", "distill.teacher.tokens", "distill.run.stage.running", "process.memory.usage" })
            Assert.True(metrics.Contains(expected), $"metric {expected} was not exported; got {string.Join(", ", metrics.Order())}");
        Assert.Equal("s", receiver.Metrics["gen_ai.server.request.duration"]);
    }

    private static async Task<WebApplication> StartReceiverAsync(Receiver receiver)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(receiver);
        var app = builder.Build();
        app.MapGrpcService<TraceReceiver>();
        app.MapGrpcService<MetricsReceiver>();
        await app.StartAsync();
        return app;
    }

    public void Dispose() => _dir.Dispose();

    private sealed record ReceivedSpan(string Service, string TraceId, string SpanId, string ParentSpanId, string Name, Dictionary<string, string> Attributes);

    private sealed class Receiver
    {
        public ConcurrentBag<ReceivedSpan> Spans { get; } = [];

        /// <summary>Metric name → unit.</summary>
        public ConcurrentDictionary<string, string> Metrics { get; } = new(StringComparer.Ordinal);

        public static string Service(Resource? resource) => resource?.Attributes.FirstOrDefault(a => a.Key == "service.name")?.Value?.StringValue ?? "";
    }

    private sealed class TraceReceiver(Receiver receiver) : TraceService.TraceServiceBase
    {
        public override Task<ExportTraceServiceResponse> Export(ExportTraceServiceRequest request, ServerCallContext context)
        {
            foreach (var resource in request.ResourceSpans)
            foreach (var scope in resource.ScopeSpans)
            foreach (var span in scope.Spans)
            {
                receiver.Spans.Add(new ReceivedSpan(Receiver.Service(resource.Resource), Convert.ToHexStringLower(span.TraceId.Span), Convert.ToHexStringLower(span.SpanId.Span),
                    Convert.ToHexStringLower(span.ParentSpanId.Span), span.Name, span.Attributes.ToDictionary(a => a.Key, a => a.Value?.StringValue ?? a.Value?.ToString() ?? "")));
            }

            return Task.FromResult(new ExportTraceServiceResponse());
        }
    }

    private sealed class MetricsReceiver(Receiver receiver) : MetricsService.MetricsServiceBase
    {
        public override Task<ExportMetricsServiceResponse> Export(ExportMetricsServiceRequest request, ServerCallContext context)
        {
            foreach (var metric in request.ResourceMetrics.SelectMany(r => r.ScopeMetrics).SelectMany(s => s.Metrics))
                receiver.Metrics[metric.Name] = metric.Unit;
            return Task.FromResult(new ExportMetricsServiceResponse());
        }
    }
}
