using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Entities;

/// <summary>What the user asks for: the run, its teacher, where each stage runs, its storage, and its lifecycle controls.</summary>
public sealed class DistillationRunSpec
{
    [JsonPropertyName("run")]
    [Required]
    [Description("The run spec of the runs API (distill run submit): stages, mesh, precompute, extract, evaluate and the keys `distill train` reads. Paths are paths in the pods: the models claim is mounted at /models.")]
    public JsonObject Run { get; set; } = [];

    [JsonPropertyName("teacher")]
    [Description("How the run's teacher is served: a shared teacher Deployment for this model, or an existing teacher service.")]
    public TeacherSpec? Teacher { get; set; }

    [JsonPropertyName("resources")]
    [Description("Where each stage's pods run and what they request, by stage name.")]
    public StageResourcesSpec Resources { get; set; } = new();

    [JsonPropertyName("storage")]
    [Description("The volumes the run's pods mount.")]
    public StorageSpec Storage { get; set; } = new();

    [JsonPropertyName("suspend")]
    [Description("Stop the run's pods (checkpoints are kept); false again resumes it.")]
    public bool Suspend { get; set; }

    [JsonPropertyName("activeDeadlineSeconds")]
    [Range(1, long.MaxValue)]
    [Description("Fail the run when it has been active for longer than this.")]
    public long? ActiveDeadlineSeconds { get; set; }

    [JsonPropertyName("unschedulableGraceSeconds")]
    [Range(0, long.MaxValue)]
    [Description("How long a stage's pods may wait for a node (or a Kueue quota) before the run fails (default 1800).")]
    public long? UnschedulableGraceSeconds { get; set; }
}

/// <summary>A teacher served for the run's train stage.</summary>
public sealed class TeacherSpec
{
    [JsonPropertyName("model")]
    [Description("The teacher's model folder on the models volume (e.g. /models/qwen2.5-1.5b). Runs with the same model, dtype and device share one teacher Deployment.")]
    public string? Model { get; set; }

    [JsonPropertyName("endpoint")]
    [Description("The address of an existing teacher service (http://host:port) to use instead of a Deployment.")]
    public string? Endpoint { get; set; }

    [JsonPropertyName("dtype")]
    [AllowedValues("float32", "bfloat16")]
    public string Dtype { get; set; } = "bfloat16";

    [JsonPropertyName("device")]
    [RegularExpression("^(cpu|cuda|cuda:[0-9]{1,2})$")]
    public string Device { get; set; } = "cuda";

    [JsonPropertyName("replicas")]
    [Range(1, 64)]
    [Description("Replicas while runs need the teacher.")]
    public int Replicas { get; set; } = 1;

    [JsonPropertyName("idleTimeoutSeconds")]
    [Range(0, long.MaxValue)]
    [Description("Scale the teacher to zero once no run has needed it for this long, counted from when it was ready (default 900).")]
    public long IdleTimeoutSeconds { get; set; } = 900;

    [JsonPropertyName("resources")]
    public PodResourcesSpec Resources { get; set; } = new() { Gpus = 1 };
}

/// <summary>Per-stage scheduling.</summary>
public sealed class StageResourcesSpec
{
    [JsonPropertyName("precompute")]
    public PodResourcesSpec? Precompute { get; set; }

    [JsonPropertyName("train")]
    public PodResourcesSpec? Train { get; set; }

    [JsonPropertyName("extract")]
    public PodResourcesSpec? Extract { get; set; }

    [JsonPropertyName("evaluate")]
    public PodResourcesSpec? Evaluate { get; set; }

    [JsonPropertyName("publish")]
    public PodResourcesSpec? Publish { get; set; }

    /// <summary>The resources of a stage by name (null: the defaults).</summary>
    public PodResourcesSpec? Of(string stage) => stage switch
    {
        "precompute" => Precompute,
        "train" => Train,
        "extract" => Extract,
        "evaluate" => Evaluate,
        "publish" => Publish,
        _ => null,
    };
}

/// <summary>What one pod requests and where it may run.</summary>
public sealed class PodResourcesSpec
{
    [JsonPropertyName("gpus")]
    [Range(0, 16)]
    [Description("nvidia.com/gpu the pod requests (and is limited to).")]
    public int Gpus { get; set; }

    [JsonPropertyName("cpu")]
    [Description("CPU request and limit, a Kubernetes quantity (e.g. \"4\").")]
    public string? Cpu { get; set; }

    [JsonPropertyName("memory")]
    [Description("Memory request and limit, a Kubernetes quantity (e.g. \"32Gi\").")]
    public string? Memory { get; set; }

    [JsonPropertyName("nodeSelector")]
    public Dictionary<string, string>? NodeSelector { get; set; }

    [JsonPropertyName("tolerations")]
    public List<V1Toleration>? Tolerations { get; set; }

    [JsonPropertyName("priorityClassName")]
    public string? PriorityClassName { get; set; }

    [JsonPropertyName("queueName")]
    [Description("The Kueue LocalQueue to admit the stage's Job through (label kueue.x-k8s.io/queue-name).")]
    public string? QueueName { get; set; }
}

/// <summary>The volumes the run uses.</summary>
public sealed class StorageSpec
{
    [JsonPropertyName("runsClaim")]
    [Description("PersistentVolumeClaim for checkpoints and outputs (mounted at /var/lib/distill/runs); default distill-runs.")]
    public string RunsClaim { get; set; } = "distill-runs";

    [JsonPropertyName("modelsClaim")]
    [Description("PersistentVolumeClaim holding models and datasets (mounted read-only at /models); default distill-models.")]
    public string ModelsClaim { get; set; } = "distill-models";
}
