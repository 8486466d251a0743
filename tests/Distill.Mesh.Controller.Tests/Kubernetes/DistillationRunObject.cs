using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Distill.Mesh.Controller.Tests.Kubernetes;

/// <summary>A minimal typed DistillationRun for exercising <see cref="GenericClient"/> against the fake API server.</summary>
public sealed class DistillationRunObject : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = "distill.mesh.io/v1alpha1";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "DistillationRun";

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public RunSpec? Spec { get; set; }

    public sealed class RunSpec
    {
        [JsonPropertyName("student")]
        public string? Student { get; set; }
    }
}
