using Distill.Mesh.Controller.Kubernetes.Entities;
using k8s;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Reconciliation;

/// <summary>Kubernetes Events on a run for the transitions a user looks for in `kubectl describe drun`.</summary>
public sealed class RunEvents(IKubernetes client, TimeProvider time, ILogger logger)
{
    public async Task RecordAsync(DistillationRun run, string type, string reason, string message, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var name = $"{run.Metadata.Name}.{now.Ticks:x}";
        try
        {
            await client.CoreV1.CreateNamespacedEventAsync(new Corev1Event
            {
                Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = run.Metadata.NamespaceProperty },
                InvolvedObject = new V1ObjectReference
                {
                    ApiVersion = DistillationRun.ApiVersionName,
                    Kind = DistillationRun.KindName,
                    Name = run.Metadata.Name,
                    NamespaceProperty = run.Metadata.NamespaceProperty,
                    Uid = run.Metadata.Uid,
                },
                Type = type,
                Reason = reason,
                Message = message,
                FirstTimestamp = now,
                LastTimestamp = now,
                Count = 1,
                Source = new V1EventSource { Component = Resources.Labels.Controller },
                ReportingComponent = Resources.Labels.Controller,
            }, run.Metadata.NamespaceProperty, cancellationToken: cancellationToken);
        }
        catch (Exception e) when (e is k8s.Autorest.HttpOperationException or HttpRequestException)
        {
            // An event is for people; losing one must not fail the reconcile.
            logger.LogWarning("Could not record event {Reason} on run {Run}: {Error}", reason, run.Metadata.Name, e.Message);
        }
    }
}
