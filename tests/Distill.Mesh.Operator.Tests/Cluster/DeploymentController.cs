using System.Text.Json.Nodes;
using Distill.Mesh.Testing.Kubernetes;
using k8s.Models;

namespace Distill.Mesh.Operator.Tests.Cluster;

/// <summary>
/// The apps/v1 Deployment controller, without the ReplicaSet in between: pods from the template
/// until spec.replicas run, the surplus deleted (those not ready first), and status replicas /
/// readyReplicas / availableReplicas from the pods' Ready condition.
/// </summary>
internal sealed class DeploymentController(FakeApiServer api)
{
    public void Pass(IReadOnlyList<V1Pod> pods)
    {
        foreach (var deployment in api.List("apps", "v1", "deployments").Select(Objects.Typed<V1Deployment>))
        {
            var ns = deployment.Metadata.NamespaceProperty;
            var mine = pods.Where(p => Objects.OwnedBy(p.Metadata, deployment.Metadata.Uid) && !Objects.Deleting(p) && !Objects.Terminal(p)).ToList();
            var wanted = deployment.Spec.Replicas ?? 1;
            for (var i = mine.Count; i < wanted; i++)
                mine.Add(Objects.Typed<V1Pod>(CreatePod(deployment)));
            foreach (var surplus in mine.OrderBy(Objects.Ready).ThenByDescending(p => p.Metadata.CreationTimestamp).Take(Math.Max(0, mine.Count - wanted)).ToList())
            {
                api.Delete("", "v1", "pods", ns, surplus.Metadata.Name);
                mine.Remove(surplus);
            }

            var ready = mine.Count(Objects.Ready);
            var status = deployment.Status;
            if (status?.Replicas == mine.Count && (status.ReadyReplicas ?? 0) == ready && status.ObservedGeneration == deployment.Metadata.Generation)
                continue;
            api.Patch("apps", "v1", "deployments", ns, deployment.Metadata.Name, new JsonObject
            {
                ["status"] = new JsonObject
                {
                    ["observedGeneration"] = deployment.Metadata.Generation,
                    ["replicas"] = mine.Count,
                    ["updatedReplicas"] = mine.Count,
                    ["readyReplicas"] = ready,
                    ["availableReplicas"] = ready,
                    ["unavailableReplicas"] = mine.Count - ready,
                },
            });
        }
    }

    private JsonObject CreatePod(V1Deployment deployment)
    {
        var template = Objects.Node(deployment.Spec.Template);
        var pod = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject
            {
                ["name"] = $"{deployment.Metadata.Name}-{Objects.Suffix(10)}-{Objects.Suffix()}",
                ["namespace"] = deployment.Metadata.NamespaceProperty,
                ["labels"] = template["metadata"]?["labels"]?.DeepClone() ?? new JsonObject(),
                ["ownerReferences"] = new JsonArray(new JsonObject
                {
                    ["apiVersion"] = "apps/v1",
                    ["kind"] = "Deployment",
                    ["name"] = deployment.Metadata.Name,
                    ["uid"] = deployment.Metadata.Uid,
                    ["controller"] = true,
                    ["blockOwnerDeletion"] = true,
                }),
            },
            ["spec"] = template["spec"]!.DeepClone(),
            ["status"] = new JsonObject { ["phase"] = "Pending" },
        };
        return api.Put("", "v1", "pods", pod);
    }
}
