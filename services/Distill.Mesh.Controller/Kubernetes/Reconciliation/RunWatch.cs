using System.Runtime.CompilerServices;
using System.Text.Json;
using Distill.Mesh.Controller.Kubernetes.Entities;
using k8s;

namespace Distill.Mesh.Controller.Kubernetes.Reconciliation;

/// <summary>A watch of DistillationRuns as typed objects (the custom-objects watch yields untyped JSON).</summary>
public static class RunWatch
{
    public static async IAsyncEnumerable<(WatchEventType Type, DistillationRun Item)> Of(IKubernetes client, string ns, string? resourceVersion, Action<Exception>? onError,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var (type, item) in client.CustomObjects.WatchListNamespacedCustomObjectAsync(DistillationRun.Group, DistillationRun.Version, ns, DistillationRun.Plural,
            resourceVersion: resourceVersion, timeoutSeconds: 300, onError: onError, cancellationToken: cancellationToken))
        {
            var json = item is JsonElement element ? element.GetRawText() : KubernetesJson.Serialize(item);
            yield return (type, KubernetesJson.Deserialize<DistillationRun>(json));
        }
    }
}
