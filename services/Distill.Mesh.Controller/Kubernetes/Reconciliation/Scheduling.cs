using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Reconciliation;

/// <summary>Why a stage's pods are not running yet, in the scheduler's (or Kueue's) own words.</summary>
public sealed record Waiting(string Reason, string Message);

/// <summary>
/// Reads what holds a stage back: a pod Pending with PodScheduled=False/Unschedulable (the
/// scheduler's message, e.g. "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"), or a
/// Kueue Workload of the Job with QuotaReserved=False (WaitingForQuota, with Kueue's message).
/// </summary>
public static class Scheduling
{
    public const string KueueGroup = "kueue.x-k8s.io";
    public const string KueueVersion = "v1beta1";

    public static async Task<Waiting?> WaitingAsync(IKubernetes client, V1Job job, CancellationToken cancellationToken)
    {
        var ns = job.Metadata.NamespaceProperty;
        var pods = await client.CoreV1.ListNamespacedPodAsync(ns, labelSelector: $"job-name={job.Metadata.Name}", cancellationToken: cancellationToken);
        foreach (var pod in pods.Items.Where(p => p.Status?.Phase == "Pending"))
        {
            var scheduled = pod.Status.Conditions?.FirstOrDefault(c => c.Type == "PodScheduled");
            if (scheduled is { Status: "False", Reason: "Unschedulable" })
                return new Waiting("Unschedulable", scheduled.Message ?? "the pod cannot be scheduled");
        }

        if (job.Spec.Suspend == true && job.Metadata.Labels?.ContainsKey(Resources.Labels.KueueQueue) == true)
            return await KueueAsync(client, job, cancellationToken) ?? new Waiting("WaitingForQuota", "waiting for Kueue to admit the Job");
        return null;
    }

    private static async Task<Waiting?> KueueAsync(IKubernetes client, V1Job job, CancellationToken cancellationToken)
    {
        object list;
        try
        {
            list = await client.CustomObjects.ListNamespacedCustomObjectAsync(KueueGroup, KueueVersion, job.Metadata.NamespaceProperty, "workloads", cancellationToken: cancellationToken);
        }
        catch (Exception e) when (KubeCalls.IsNotFound(e) || e is k8s.Autorest.HttpOperationException { Response.StatusCode: System.Net.HttpStatusCode.Forbidden })
        {
            return null; // Kueue is not installed (or the controller may not read its Workloads)
        }

        var items = JsonNode.Parse(JsonSerializer.Serialize(list))?["items"]?.AsArray() ?? [];
        foreach (var workload in items.OfType<JsonObject>())
        {
            var owned = workload["metadata"]?["ownerReferences"]?.AsArray().Any(o => o?["uid"]?.GetValue<string>() == job.Metadata.Uid) == true;
            if (!owned)
                continue;
            var reserved = workload["status"]?["conditions"]?.AsArray().OfType<JsonObject>().FirstOrDefault(c => c["type"]?.GetValue<string>() == "QuotaReserved");
            if (reserved?["status"]?.GetValue<string>() == "False")
                return new Waiting("WaitingForQuota", reserved["message"]?.GetValue<string>() is { Length: > 0 } message ? message : $"Kueue has not reserved quota ({reserved["reason"]?.GetValue<string>() ?? "Pending"})");
        }

        return null;
    }
}
