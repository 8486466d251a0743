using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Distill.Mesh.Controller.Tests.Kubernetes;

/// <summary>A list of <see cref="DistillationRunObject"/> as the API server returns it.</summary>
public sealed class DistillationRunList : IKubernetesObject<V1ListMeta>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = "distill.mesh.io/v1alpha1";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "DistillationRunList";

    [JsonPropertyName("metadata")]
    public V1ListMeta Metadata { get; set; } = new();

    [JsonPropertyName("items")]
    public List<DistillationRunObject> Items { get; set; } = [];
}
