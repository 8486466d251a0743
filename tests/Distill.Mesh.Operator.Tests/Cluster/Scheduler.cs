using System.Globalization;
using System.Text.Json.Nodes;
using Distill.Mesh.Testing.Kubernetes;
using k8s.Models;

namespace Distill.Mesh.Operator.Tests.Cluster;

/// <summary>A node of the simulated cluster: its GPUs and labels.</summary>
internal sealed record SimulatedNode(string Name, int Gpus, IReadOnlyDictionary<string, string>? Labels = null);

/// <summary>
/// The scheduler, for GPUs: a pending pod goes to the first node with enough free nvidia.com/gpu
/// (and matching its nodeSelector); one that fits nowhere gets PodScheduled=False/Unschedulable with
/// the message kube-scheduler writes ("0/3 nodes are available: 3 Insufficient nvidia.com/gpu. ...").
/// </summary>
internal sealed class Scheduler(FakeApiServer api)
{
    private const string Gpu = "nvidia.com/gpu";

    /// <summary>The nodes (tests change them: a cluster with no free GPU, then one that gets a node).</summary>
    public List<SimulatedNode> Nodes { get; } = [new("node-0", 8), new("node-1", 8), new("node-2", 8)];

    public void Pass(IReadOnlyList<V1Pod> pods)
    {
        List<SimulatedNode> nodes;
        lock (Nodes)
            nodes = [.. Nodes];
        var used = pods.Where(p => p.Spec.NodeName is not null && !Objects.Terminal(p)).GroupBy(p => p.Spec.NodeName).ToDictionary(g => g.Key, g => g.Sum(Gpus));
        foreach (var pod in pods.Where(p => p.Spec.NodeName is null && p.Status?.Phase == "Pending" && !Objects.Deleting(p)))
        {
            var wanted = Gpus(pod);
            var fits = nodes.Where(n => Matches(pod.Spec.NodeSelector, n.Labels)).ToList();
            var node = fits.FirstOrDefault(n => n.Gpus - used.GetValueOrDefault(n.Name) >= wanted);
            if (node is not null)
            {
                used[node.Name] = used.GetValueOrDefault(node.Name) + wanted;
                api.Patch("", "v1", "pods", pod.Metadata.NamespaceProperty, pod.Metadata.Name, new JsonObject
                {
                    ["spec"] = new JsonObject { ["nodeName"] = node.Name },
                    ["status"] = new JsonObject { ["conditions"] = new JsonArray(Condition("PodScheduled", "True", null, null)) },
                });
                continue;
            }

            var message = Unschedulable(nodes.Count, nodes.Count - fits.Count, fits.Count);
            var current = pod.Status?.Conditions?.FirstOrDefault(c => c.Type == "PodScheduled");
            if (current is { Status: "False" } && current.Message == message)
                continue;
            api.Patch("", "v1", "pods", pod.Metadata.NamespaceProperty, pod.Metadata.Name, new JsonObject
            {
                ["status"] = new JsonObject { ["conditions"] = new JsonArray(Condition("PodScheduled", "False", "Unschedulable", message)) },
            });
        }
    }

    /// <summary>kube-scheduler's FitError text for nodes short of GPUs (and those the selector rules out).</summary>
    private static string Unschedulable(int nodes, int mismatched, int insufficient)
    {
        var reasons = new List<string>();
        if (insufficient > 0)
            reasons.Add($"{insufficient} Insufficient {Gpu}");
        if (mismatched > 0)
            reasons.Add($"{mismatched} node(s) didn't match Pod's node affinity/selector");
        return $"0/{nodes} nodes are available: {string.Join(", ", reasons)}. preemption: 0/{nodes} nodes are available: {nodes} No preemption victims found for incoming pod.";
    }

    private static int Gpus(V1Pod pod) => pod.Spec.Containers.Sum(c =>
        c.Resources?.Requests?.TryGetValue(Gpu, out var quantity) == true ? int.Parse(quantity.ToString(), CultureInfo.InvariantCulture) : 0);

    private static bool Matches(IDictionary<string, string>? selector, IReadOnlyDictionary<string, string>? labels) =>
        selector is not { Count: > 0 } || selector.All(s => labels?.TryGetValue(s.Key, out var value) == true && value == s.Value);

    private static JsonObject Condition(string type, string status, string? reason, string? message)
    {
        var condition = new JsonObject { ["type"] = type, ["status"] = status, ["lastTransitionTime"] = Objects.Now() };
        if (reason is not null)
            condition["reason"] = reason;
        if (message is not null)
            condition["message"] = message;
        return condition;
    }
}
