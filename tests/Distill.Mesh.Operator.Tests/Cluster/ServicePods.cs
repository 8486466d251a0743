using System.Collections.Concurrent;
using Distill.Mesh.Extractor.Extensions;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Teacher.Extensions;
using Distill.Mesh.Trainer.Extensions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Operator.Tests.Cluster;

/// <summary>
/// Runs a pod's container as its image would: the trainer, teacher or extractor host, configured
/// from the pod's environment (Trainer__JobSpec is Trainer:JobSpec), on an in-memory server,
/// reaching other services through the cluster network. A job-mode host ends with the job's exit
/// code; a server (the teacher Deployment's pods) is Ready once its readiness check passes and runs
/// until it is terminated.
/// </summary>
internal sealed class ServicePods(ClusterNetwork network)
{
    public async Task<int> RunAsync(PodContext pod, CancellationToken terminate)
    {
        var image = pod.Container.Image;
        var settings = pod.Environment.ToDictionary(e => e.Key.Replace("__", ":", StringComparison.Ordinal), e => (string?)e.Value);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = pod.Folder });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new PodLogs(pod.Logs));
        builder.Configuration.AddInMemoryCollection(settings);
        Action<WebApplication> map;
        string jobKey;
        if (image.Contains("trainer", StringComparison.Ordinal))
        {
            builder.AddTrainerService();
            (map, jobKey) = (a => a.MapTrainerService(), "Trainer:JobSpec");
        }
        else if (image.Contains("teacher", StringComparison.Ordinal))
        {
            builder.AddTeacherService();
            (map, jobKey) = (a => a.MapTeacherService(), "Teacher:JobSpec");
        }
        else if (image.Contains("extractor", StringComparison.Ordinal))
        {
            builder.AddExtractorService();
            (map, jobKey) = (a => a.MapExtractorService(), "Extractor:JobSpec");
        }
        else
        {
            pod.Logs.Enqueue($"[kubelet] image {image} is none of the mesh's");
            return 127;
        }

        // The pod's own process: its exit code is the job's; its calls go over the cluster network.
        builder.Services.AddSingleton(sp => new JobOutcome(sp.GetRequiredService<IHostApplicationLifetime>()) { OwnsProcess = false });
        builder.Services.AddSingleton(sp => new MeshChannels(sp.GetRequiredService<IOptions<MeshOptions>>(), network));
        var app = builder.Build();
        app.MapDefaultEndpoints();
        map(app);
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Lifetime.ApplicationStopping.Register(() => stopped.TrySetResult());
        try
        {
            await app.StartAsync(terminate);
            if (!settings.ContainsKey(jobKey))
            {
                _ = MeshHealth.WaitUntilReadyAsync(app.Services, terminate).ContinueWith(ready =>
                {
                    if (ready.IsCompletedSuccessfully)
                        pod.Serve(app.GetTestServer().CreateHandler());
                }, TaskScheduler.Default);
            }

            await Task.WhenAny(stopped.Task, Task.Delay(Timeout.Infinite, terminate));
        }
        catch (OperationCanceledException) when (terminate.IsCancellationRequested)
        {
        }

        // SIGTERM (or the job's own end): the host stops gracefully, as the process would.
        await app.StopAsync(CancellationToken.None);
        var code = app.Services.GetRequiredService<JobOutcome>().ExitCode;
        await app.DisposeAsync();
        return code ?? (terminate.IsCancellationRequested ? 143 : 0);
    }

    /// <summary>A pod's log, as `kubectl logs` would show it.</summary>
    private sealed class PodLogs(ConcurrentQueue<string> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(lines, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(ConcurrentQueue<string> lines, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information && !category.StartsWith("Microsoft.", StringComparison.Ordinal);

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel))
                    lines.Enqueue($"{logLevel.ToString()[..4].ToLowerInvariant()}: {category.Split('.')[^1]}: {formatter(state, exception)}{(exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message})")}");
            }
        }
    }
}
