using System.Collections.Concurrent;
using System.Threading.Channels;
using Distill.Mesh.Controller.Kubernetes.Entities;
using Distill.Mesh.Controller.Runs;
using Distill.Mesh.Contracts.Runs.V1;
using k8s;
using k8s.Models;
using TrainerApi = Distill.Mesh.Contracts.Trainer.V1;

namespace Distill.Mesh.Controller.Kubernetes.Progress;

/// <summary>
/// What trainer pods report about their runs: fanned out as runs.v1 events to the Watch streams
/// of this controller replica, and mirrored into the run's status (progress and the published
/// artifact) at most every <see cref="Throttle"/> (and at each stage event), so `kubectl get drun`
/// and watchers on other replicas see it without one status write per step.
/// </summary>
public sealed class ProgressRelay(KubernetesConnection connection, TimeProvider time, ILogger<ProgressRelay> logger)
{
    private readonly ConcurrentDictionary<string, List<Channel<RunEvent>>> _watchers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTime> _mirrored = new(StringComparer.Ordinal);

    public TimeSpan Throttle { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Events of <paramref name="runId"/> from now on (dispose to stop).</summary>
    public Subscription Subscribe(string runId)
    {
        var channel = Channel.CreateBounded<RunEvent>(new BoundedChannelOptions(1024) { FullMode = BoundedChannelFullMode.DropOldest });
        var list = _watchers.GetOrAdd(runId, _ => []);
        lock (list)
            list.Add(channel);
        return new Subscription(channel.Reader, () =>
        {
            lock (list)
                list.Remove(channel);
        });
    }

    public sealed class Subscription(ChannelReader<RunEvent> reader, Action dispose) : IDisposable
    {
        public ChannelReader<RunEvent> Reader { get; } = reader;

        public void Dispose() => dispose();
    }

    public async Task ReportAsync(TrainerApi.TrainEvent e, CancellationToken cancellationToken)
    {
        if (TrainerRunMapping.ToEvent(e) is { } mapped && _watchers.TryGetValue(e.RunId, out var list))
        {
            lock (list)
            {
                foreach (var watcher in list)
                    watcher.Writer.TryWrite(mapped);
            }
        }

        var now = time.GetUtcNow().UtcDateTime;
        // Stage events and the last step always; other steps at most every Throttle.
        var due = e.Stage is not null || (e.TotalSteps > 0 && e.Step >= e.TotalSteps) || !_mirrored.TryGetValue(e.RunId, out var last) || now - last >= Throttle;
        if (!due || (e.Stage is null && e.Step == 0))
            return;
        _mirrored[e.RunId] = now;
        await MirrorAsync(e, now, cancellationToken);
    }

    private async Task MirrorAsync(TrainerApi.TrainEvent e, DateTime now, CancellationToken cancellationToken)
    {
        var status = new Dictionary<string, object?>();
        if (e.Step > 0)
        {
            var eta = e.TokensPerSecond > 0 && e.Tokens > 0 && e.TotalSteps > e.Step ? (long?)((e.TotalSteps - e.Step) * (e.Tokens / e.TokensPerSecond)) : null;
            status["progress"] = new TrainingProgress
            {
                Step = e.Step,
                TotalSteps = e.TotalSteps,
                Loss = e.Loss,
                TokensPerSecond = e.TokensPerSecond,
                EtaSeconds = eta,
                LastUpdate = now,
                Summary = $"{e.Step}/{e.TotalSteps}",
            };
        }

        if (e.Stage is { Name: "publish", State: TrainerApi.RunState.Succeeded, Artifact.Length: > 0 } published)
            status["artifact"] = published.Artifact;
        if (status.Count == 0)
            return;
        try
        {
            await connection.Client.CustomObjects.PatchNamespacedCustomObjectStatusAsync(new V1Patch(KubernetesJson.Serialize(new { status }), V1Patch.PatchType.MergePatch),
                DistillationRun.Group, DistillationRun.Version, connection.Namespace, DistillationRun.Plural, e.RunId, cancellationToken: cancellationToken);
        }
        catch (k8s.Autorest.HttpOperationException ex)
        {
            logger.LogWarning("Could not mirror the progress of run {Run} into its status: {Error}", e.RunId, ex.Message);
        }
    }
}
