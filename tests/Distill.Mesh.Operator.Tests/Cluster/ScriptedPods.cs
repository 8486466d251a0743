using System.Net;

namespace Distill.Mesh.Operator.Tests.Cluster;

/// <summary>
/// Containers that play a part instead of running a service: a job that succeeds after a moment
/// (or when a test opens its gate), a teacher that becomes Ready after its "load". Each exits 143
/// on SIGTERM, as the services do.
/// </summary>
internal sealed class ScriptedPods
{
    private readonly Dictionary<string, TaskCompletionSource> _gates = new(StringComparer.Ordinal);

    /// <summary>How long a job's container runs before it exits 0.</summary>
    public TimeSpan JobTime { get; set; } = TimeSpan.FromMilliseconds(300);

    /// <summary>How long a teacher takes to load before it is Ready.</summary>
    public TimeSpan TeacherLoad { get; set; } = TimeSpan.FromMilliseconds(300);

    /// <summary>Pods of this stage (distill.mesh.io/stage) run until <see cref="Open"/> is called.</summary>
    public void Hold(string stage)
    {
        lock (_gates)
            _gates[stage] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public void Open(string stage)
    {
        lock (_gates)
            _gates[stage].TrySetResult();
    }

    public async Task<int> RunAsync(PodContext pod, CancellationToken terminate)
    {
        try
        {
            if (pod.Component == "teacher")
            {
                await Task.Delay(TeacherLoad, terminate);
                pod.Serve(new Unanswered());
                await Task.Delay(Timeout.Infinite, terminate);
            }

            Task gate;
            lock (_gates)
                gate = pod.Pod.Metadata.Labels?.TryGetValue("distill.mesh.io/stage", out var stage) == true && _gates.TryGetValue(stage, out var held) ? held.Task : Task.CompletedTask;
            await gate.WaitAsync(terminate);
            await Task.Delay(JobTime, terminate);
            return 0;
        }
        catch (OperationCanceledException) when (terminate.IsCancellationRequested)
        {
            return 143;
        }
    }

    /// <summary>A scripted teacher's endpoint: scripted jobs never call it.</summary>
    private sealed class Unanswered : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(HttpStatusCode.ServiceUnavailable));
    }
}
