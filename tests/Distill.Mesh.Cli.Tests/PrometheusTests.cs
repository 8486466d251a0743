using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Cli.Tests;

/// <summary>
/// A real Prometheus (Debian's package, installed by scripts/setup.sh) scrapes `distill up` while
/// a tiny KD run goes through it; then every PromQL expression of the chart's dashboards must
/// return at least one series. The NVIDIA DCGM exporter is the one thing simulated: a static
/// target with its two metric names and a trainer pod's labels.
/// </summary>
[Collection(nameof(ProcessMetrics))]
public sealed partial class PrometheusTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);
    private readonly TempFolder _dir = new();

    [Fact]
    public async Task EveryDashboardQuery_ReturnsSeries_AfterATinyRunThroughDistillUp()
    {
        var prometheusBinary = FindOnPath("prometheus")
            ?? throw new InvalidOperationException("prometheus is not on PATH: run scripts/setup.sh (apt-get install prometheus)");
        using (var teacher = TinyModels.Create("llama", 21))
            TinyModels.SaveWithByteTokenizer(teacher, _dir.Combine("teacher"));
        using (var student = TinyModels.Create("qwen2", 22))
            TinyModels.SaveWithByteTokenizer(student, _dir.Combine("student"));
        File.WriteAllLines(_dir.Combine("data.jsonl"), Enumerable.Range(0, 10).Select(i => $"{{\"text\": \"scraped sample {i}\"}}"));

        var metricsPort = FreePort();
        using var dcgm = FakeDcgm.Start(FreePort());
        using var up = new CancellationTokenSource();
        var upOutput = new StringWriter();
        var upError = new StringWriter();
        var upTask = DistillCommand.Create().Parse(["up", "--teacher-model", _dir.Combine("teacher"), "--port-base", "0", "--metrics-port", metricsPort.ToString(),
                "--runs", _dir.Combine("mesh", "runs"), "--registry-dir", _dir.Combine("registry")])
            .InvokeAsync(new System.CommandLine.InvocationConfiguration { Output = TextWriter.Synchronized(upOutput), Error = TextWriter.Synchronized(upError) }, up.Token);
        Process? prometheus = null;
        try
        {
            var addresses = await WaitForMeshAsync(upOutput, upTask);
            // distill up made a token (readable by this user only) and requires it on submits.
            var tokenFile = _dir.Combine("mesh", "token");
            var token = File.ReadAllText(tokenFile).Trim();
            Assert.Matches("^[0-9a-f]{64}$", token);
            if (!OperatingSystem.IsWindows())
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(tokenFile));
            Assert.Contains($"auth        token in {tokenFile}", upOutput.ToString());
            File.WriteAllText(_dir.Combine("run.yaml"), $$"""
                recipe: kd
                student: { model: student }
                teachers: [ { model: teacher } ]
                signal: { format: topk, k: 16 }
                dataset: { path: data.jsonl, max_length: 32, eval_fraction: 0.2 }
                training: { max_steps: 8, batch_size: 4, eval_every: 4, checkpoint_every: 4 }
                stages: [train, publish]
                publish: { name: scraped-student, registry: "{{addresses["registry"]}}" }
                """);

            prometheus = StartPrometheus(prometheusBinary, metricsPort, dcgm.Port, out var api);
            using var http = new HttpClient { BaseAddress = new Uri(api), Timeout = TimeSpan.FromSeconds(30) };
            await EventuallyAsync(async () => (await http.GetAsync("/-/ready")).IsSuccessStatusCode, "Prometheus did not become ready", prometheus);

            // One refused request, so the refusal panel has a series (a generation without a prompt).
            using (var channel = Grpc.Net.Client.GrpcChannel.ForAddress(addresses["teacher"]))
            {
                var call = new Contracts.Teacher.V1.TeacherService.TeacherServiceClient(channel).Generate(new Contracts.Teacher.V1.GenerateRequest { MaxNewTokens = 1 });
                var refusal = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));
                Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, refusal.StatusCode);
            }

            var (code, output, error) = await CliRunner.Run("run", "submit", _dir.Combine("run.yaml"), "--controller", addresses["controller"],
                "--trainer", addresses["trainer"], "--teacher", addresses["teacher"], "--run-id", "scraped", "--token", token, "--watch");
            Assert.True(code == 0, error + output);

            var expressions = DashboardExpressions().ToList();
            Assert.True(expressions.Count >= 20, $"only {expressions.Count} dashboard expressions found");
            var missing = new List<string>();
            // Scrapes are 1 s apart: wait until every expression has data, or report those that never do.
            await EventuallyAsync(async () =>
            {
                missing.Clear();
                foreach (var (dashboard, title, expr) in expressions)
                {
                    var answer = JsonNode.Parse(await http.GetStringAsync($"/api/v1/query?query={Uri.EscapeDataString(Substitute(expr))}"))!;
                    if ((string?)answer["status"] != "success")
                        missing.Add($"{dashboard} / {title}: {expr} → {answer.ToJsonString()}");
                    else if (answer["data"]!["result"]!.AsArray().Count == 0)
                        missing.Add($"{dashboard} / {title}: {expr} → no series");
                }

                return missing.Count == 0;
            }, () => $"queries without series:\n{string.Join("\n", missing)}\nmetrics served:\n{string.Join("\n", MetricNames(http).Result)}", prometheus);
        }
        finally
        {
            up.Cancel();
            await upTask.WaitAsync(Timeout);
            if (prometheus is { HasExited: false })
                prometheus.Kill(entireProcessTree: true);
            prometheus?.Dispose();
        }
    }

    [Fact]
    public void DashboardExpressions_AreFoundInBothDashboards_AndFilterRunPanelsByRun()
    {
        var expressions = DashboardExpressions().ToList();

        Assert.Equal(["fleet", "run"], expressions.Select(e => e.Dashboard).Distinct().Order());
        Assert.All(expressions.Where(e => e.Dashboard == "run" && e.Expr.StartsWith("distill_train", StringComparison.Ordinal)), e => Assert.Contains("run=~\"$run\"", e.Expr));
    }

    /// <summary>Every (dashboard, panel title, expr) of charts/distill-mesh/dashboards/*.json.</summary>
    private static IEnumerable<(string Dashboard, string Title, string Expr)> DashboardExpressions()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(RepositoryRoot(), "charts", "distill-mesh", "dashboards"), "*.json").Order(StringComparer.Ordinal))
        {
            var dashboard = JsonNode.Parse(File.ReadAllText(file))!;
            foreach (var panel in dashboard["panels"]!.AsArray())
            foreach (var target in panel!["targets"]!.AsArray())
                yield return (Path.GetFileNameWithoutExtension(file), (string)panel["title"]!, (string)target!["expr"]!);
        }
    }

    /// <summary>Grafana's variables as the test's choices: every run and stage, a one-minute rate window.</summary>
    private static string Substitute(string expr) => expr.Replace("$__rate_interval", "1m").Replace("$run", ".+").Replace("$stage", ".+");

    private static async Task<IEnumerable<string>> MetricNames(HttpClient http)
    {
        var answer = JsonNode.Parse(await http.GetStringAsync("/api/v1/label/__name__/values"))!;
        return answer["data"]!.AsArray().Select(n => (string)n!).Where(n => n.StartsWith("distill", StringComparison.Ordinal) || n.StartsWith("gen_ai", StringComparison.Ordinal) || n.StartsWith("DCGM", StringComparison.Ordinal));
    }

    private Process StartPrometheus(string binary, int metricsPort, int dcgmPort, out string api)
    {
        var port = FreePort();
        var config = _dir.Combine("prometheus.yml");
        File.WriteAllText(config, $$"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: distill-mesh
                static_configs: [ { targets: ["127.0.0.1:{{metricsPort}}"] } ]
              - job_name: dcgm
                static_configs: [ { targets: ["127.0.0.1:{{dcgmPort}}"] } ]
            """);
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            ArgumentList = { $"--config.file={config}", $"--storage.tsdb.path={_dir.Combine("tsdb")}", $"--web.listen-address=127.0.0.1:{port}" },
        };
        var process = Process.Start(start)!;
        process.ErrorDataReceived += (_, _) => { };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        api = $"http://127.0.0.1:{port}";
        return process;
    }

    private static async Task<Dictionary<string, string>> WaitForMeshAsync(StringWriter output, Task<int> up)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < Timeout)
        {
            string text;
            lock (output)
                text = output.ToString();
            if (text.Contains("mesh is up", StringComparison.Ordinal))
                return AddressLine().Matches(text).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
            if (up.IsCompleted)
                throw new InvalidOperationException($"distill up exited with {await up}: {text}");
            await Task.Delay(100);
        }

        throw new TimeoutException("distill up did not come up");
    }

    [GeneratedRegex(@"^(teacher|trainer|controller|registry|extractor)\s+(https?://\S+)", RegexOptions.Multiline)]
    private static partial Regex AddressLine();

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string failure, Process prometheus) => await EventuallyAsync(condition, () => failure, prometheus);

    private static async Task EventuallyAsync(Func<Task<bool>> condition, Func<string> failure, Process prometheus)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (prometheus.HasExited)
                throw new InvalidOperationException($"prometheus exited with {prometheus.ExitCode}");
            try
            {
                if (await condition())
                    return;
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(500);
        }

        Assert.Fail(failure());
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Distill.Mesh.sln")))
                return dir.FullName;
        }

        throw new DirectoryNotFoundException("the repository root (Distill.Mesh.sln) is not above the test binaries");
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>The NVIDIA DCGM exporter's two series for one trainer pod and one teacher pod, served as Prometheus text.</summary>
    private sealed class FakeDcgm : IDisposable
    {
        private readonly HttpListener _listener = new();

        public int Port { get; private init; }

        public static FakeDcgm Start(int port)
        {
            var fake = new FakeDcgm { Port = port };
            fake._listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            fake._listener.Start();
            _ = Task.Run(fake.Serve);
            return fake;
        }

        private async Task Serve()
        {
            const string Body = """
                # HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
                # TYPE DCGM_FI_DEV_GPU_UTIL gauge
                DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-0000",Hostname="gpu-node-a",modelName="NVIDIA H100 80GB HBM3",container="trainer",namespace="distill",pod="scraped-train-0-x7k2p"} 87
                DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-0001",Hostname="gpu-node-a",modelName="NVIDIA H100 80GB HBM3",container="teacher",namespace="distill",pod="teacher-3f9a1c2b7d-5d9f8-abcde"} 64
                # HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
                # TYPE DCGM_FI_DEV_FB_USED gauge
                DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-0000",Hostname="gpu-node-a",modelName="NVIDIA H100 80GB HBM3",container="trainer",namespace="distill",pod="scraped-train-0-x7k2p"} 30512
                DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-0001",Hostname="gpu-node-a",modelName="NVIDIA H100 80GB HBM3",container="teacher",namespace="distill",pod="teacher-3f9a1c2b7d-5d9f8-abcde"} 61234

                """;
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                var bytes = System.Text.Encoding.UTF8.GetBytes(Body.ReplaceLineEndings("\n"));
                context.Response.ContentType = "text/plain; version=0.0.4";
                await context.Response.OutputStream.WriteAsync(bytes);
                context.Response.Close();
            }
        }

        public void Dispose() => _listener.Close();
    }
}
