using Distill.Mesh.Testing;
using Grpc.Health.V1;

namespace Distill.Mesh.Deployment.Tests;

/// <summary>
/// The images, proved as far as this machine allows (no Docker engine): every path the Dockerfile
/// copies is what build/publish.sh produces, and each published service starts from its folder with
/// the image's entrypoint and environment and answers grpc.health.v1.
/// </summary>
[Collection(PublishedCollection.Name)]
public class PublishedServiceTests(PublishedServices published)
{
    private static readonly Dockerfile Docker = Dockerfile.Load();

    [Fact]
    public void Dockerfile_CopiesWhatPublishProduces_AndStartsTheServiceAsNonRoot()
    {
        foreach (var service in PublishedServices.Names)
        {
            var stage = Docker[service];
            var copy = Assert.Single(stage.Copies);
            Assert.Equal(($"publish-{service}", $"/out/{service}", Docker.WorkDirOf(service)), (copy.From, copy.Source, copy.Destination));
            Assert.Contains(Docker[copy.From].Runs, r => r.Contains($"build/publish.sh /out {service}", StringComparison.Ordinal));
            Assert.True(Directory.Exists(published.Folder(service)), $"build/publish.sh produced no {published.Folder(service)}");

            var entry = stage.EntryPoint ?? throw new Xunit.Sdk.XunitException($"target {service} has no ENTRYPOINT");
            Assert.Equal("dotnet", entry[0]);
            Assert.True(File.Exists(Path.Combine(published.Folder(service), entry[1])), $"{service}: the entrypoint's {entry[1]} is not in the publish folder");
            var environment = Docker.EnvironmentOf(service);
            Assert.Equal([int.Parse(environment["Mesh__Port"])], stage.Exposed);
            Assert.Equal("*", environment["Mesh__ListenAddress"]);
            Assert.DoesNotContain(environment, e => e.Key.Contains("Token", StringComparison.OrdinalIgnoreCase) && !e.Key.EndsWith("File", StringComparison.Ordinal));
            Assert.NotNull(Docker.UserOf(service));
            Assert.DoesNotContain(Docker.UserOf(service)!, new[] { "root", "0" });
            Assert.EndsWith("-noble", Docker.Stages.First(s => s.Name == "runtime").From);
        }

        // The build context keeps what publish needs.
        var ignored = File.ReadAllLines(Path.Combine(SharedData.RepositoryRoot, ".dockerignore")).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        foreach (var needed in new[] { "services", "build", "protos", "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "global.json" })
            Assert.DoesNotContain(ignored, i => i.TrimEnd('/') == needed);
    }

    [Fact]
    public void ControllerAndRegistry_CarryNoLibTorch_AndStaySmall()
    {
        static bool IsTorchNative(string file) => Path.GetFileName(file) is var name
            && (name.StartsWith("libtorch", StringComparison.Ordinal) || name.StartsWith("libc10", StringComparison.Ordinal) || name.StartsWith("libLibTorchSharp", StringComparison.Ordinal));
        static long Bytes(string folder) => Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        foreach (var service in new[] { "controller", "registry" })
        {
            var folder = published.Folder(service);
            Assert.DoesNotContain(Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories), IsTorchNative);
            Assert.True(Bytes(folder) < 50L << 20, $"{service} publishes {Bytes(folder) >> 20} MiB");
        }

        // The services that run tensors do carry it (the check above can see libtorch).
        foreach (var service in new[] { "teacher", "trainer", "extractor" })
            Assert.Contains(Directory.EnumerateFiles(published.Folder(service), "*", SearchOption.AllDirectories), f => Path.GetFileName(f) == "libtorch_cpu.so");
    }

    [Theory]
    [InlineData("controller")]
    [InlineData("registry")]
    [InlineData("trainer")]
    [InlineData("extractor")]
    [InlineData("teacher")]
    public async Task PublishedService_StartsFromItsFolder_IsLiveAndReady_AndStopsOnSigterm(string service)
    {
        using var volumes = new TempFolder();
        await using var process = ImageRun.Start(published, Docker, service, volumes);

        await process.WaitReadyAsync(TimeSpan.FromSeconds(90));

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, await process.HealthAsync("liveness"));
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, await process.HealthAsync(""));
        Assert.Equal(0, await process.TerminateAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task MetricsPort_ServesPrometheusText_OnItsOwnPortOnly()
    {
        using var volumes = new TempFolder();
        var port = FreePort();
        await using var process = ImageRun.Start(published, Docker, "registry", volumes, new Dictionary<string, string> { ["Mesh__MetricsPort"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        await process.WaitReadyAsync(TimeSpan.FromSeconds(90));
        await process.HealthAsync("");

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        var text = "";
        for (var attempt = 0; attempt < 20 && !text.Contains("http_server_request_duration_seconds", StringComparison.Ordinal); attempt++)
        {
            await Task.Delay(500);
            text = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
        }

        Assert.Contains("# TYPE http_server_request_duration_seconds histogram", text);
        // The gRPC port speaks HTTP/2 only: no scrape endpoint there.
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => http.GetStringAsync($"http://127.0.0.1:{process.Port}/metrics"));
    }

    private static int FreePort()
    {
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        return ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
    }

    [Fact]
    public async Task HealthPort_AnswersHealthChecksInPlaintext_AndNothingElse()
    {
        using var volumes = new TempFolder();
        var port = FreePort();
        await using var process = ImageRun.Start(published, Docker, "registry", volumes, new Dictionary<string, string> { ["Mesh__HealthPort"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        await process.WaitReadyAsync(TimeSpan.FromSeconds(90));

        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest { Service = "readiness" }, deadline: DateTime.UtcNow.AddSeconds(20));
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => new Contracts.Registry.V1.RegistryService.RegistryServiceClient(channel)
            .ListAsync(new Contracts.Registry.V1.ListArtifactsRequest(), deadline: DateTime.UtcNow.AddSeconds(20)).ResponseAsync);
        Assert.Equal(Grpc.Core.StatusCode.Unimplemented, refused.StatusCode);
    }
}
