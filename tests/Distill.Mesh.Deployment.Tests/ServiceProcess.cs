using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Distill.Mesh.Deployment.Tests;

/// <summary>
/// A published service started the way its image starts it: the Dockerfile's entrypoint in its
/// working directory with the image's environment, plus what the test maps (port, volumes, models).
/// </summary>
internal sealed partial class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private ServiceProcess(Process process, int port)
    {
        _process = process;
        Port = port;
        Channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Port { get; }

    public GrpcChannel Channel { get; }

    /// <summary>What the process printed so far (for failure messages).</summary>
    public string Log
    {
        get
        {
            lock (_log)
                return _log.ToString();
        }
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_log)
            _log.AppendLine(line);
    }

    /// <summary>Starts <paramref name="entryPoint"/> in <paramref name="folder"/>; Mesh__Port is set to a free port.</summary>
    public static ServiceProcess Start(string folder, string[] entryPoint, IReadOnlyDictionary<string, string> environment)
    {
        var port = FreePort();
        var start = new ProcessStartInfo(entryPoint[0], entryPoint[1..])
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Only what the image sets (and the host's PATH/HOME to find dotnet): no developer settings leak in.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("Mesh__", StringComparison.Ordinal) || k.StartsWith("DISTILL", StringComparison.Ordinal)).ToList())
            start.Environment.Remove(key);
        foreach (var (key, value) in environment)
            start.Environment[key] = value;
        start.Environment["Mesh__Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new ServiceProcess(Process.Start(start)!, port);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The grpc.health.v1 status of <paramref name="service"/>, or null while nothing answers.</summary>
    public async Task<HealthCheckResponse.Types.ServingStatus?> HealthAsync(string service)
    {
        try
        {
            var response = await new Health.HealthClient(Channel).CheckAsync(new HealthCheckRequest { Service = service }, deadline: DateTime.UtcNow.AddSeconds(5));
            return response.Status;
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            return null;
        }
    }

    /// <summary>Polls readiness until SERVING; fails with the process's log when it exits or the time is up.</summary>
    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            if (_process.HasExited)
                Assert.Fail($"the service exited with {_process.ExitCode} before it was ready:\n{Log}");
            if (await HealthAsync("readiness") == HealthCheckResponse.Types.ServingStatus.Serving)
                return;
            await Task.Delay(100);
        }

        Assert.Fail($"the service was not ready after {timeout}:\n{Log}");
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    /// <summary>SIGTERM, as Kubernetes stops a pod; returns the exit code.</summary>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        Assert.Equal(0, kill(_process.Id, 15));
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the service did not exit within {timeout} of SIGTERM:\n{Log}");
        }

        return _process.ExitCode;
    }

    /// <summary>Waits for the process to end on its own (a job); returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the process did not exit within {timeout}:\n{Log}");
        }

        return _process.ExitCode;
    }

    /// <summary>SIGKILL, as a node failure ends a pod: no chance to checkpoint.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
