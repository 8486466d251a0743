using System.ComponentModel;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Entities;

/// <summary>
/// A distillation run on Kubernetes (group distill.mesh.io, version v1alpha1, namespaced, short
/// name drun). Its spec holds the run spec of the runs API and how each stage is scheduled; its
/// status is written by the controller only, through the /status subresource.
/// </summary>
[Description("A distillation run: the run spec's stages (precompute, train, extract, evaluate, publish), each scheduled as a pod or an Indexed Job.")]
public sealed class DistillationRun : IKubernetesObject<V1ObjectMeta>, ISpec<DistillationRunSpec>, IStatus<DistillationRunStatus>
{
    public const string Group = "distill.mesh.io";
    public const string Version = "v1alpha1";
    public const string Plural = "distillationruns";
    public const string Singular = "distillationrun";
    public const string ShortName = "drun";
    public const string KindName = "DistillationRun";
    public const string ApiVersionName = Group + "/" + Version;

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = ApiVersionName;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KindName;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public DistillationRunSpec Spec { get; set; } = new();

    [JsonPropertyName("status")]
    public DistillationRunStatus Status { get; set; } = new();
}

/// <summary>A list of runs (what LIST returns).</summary>
public sealed class DistillationRunList : IKubernetesObject<V1ListMeta>, IItems<DistillationRun>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = DistillationRun.ApiVersionName;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = DistillationRun.KindName + "List";

    [JsonPropertyName("metadata")]
    public V1ListMeta Metadata { get; set; } = new();

    [JsonPropertyName("items")]
    public IList<DistillationRun> Items { get; set; } = [];
}
