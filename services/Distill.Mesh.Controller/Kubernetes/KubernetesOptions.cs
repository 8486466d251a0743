namespace Distill.Mesh.Controller.Kubernetes;

/// <summary>The Kubernetes backend's settings (configuration section "Controller:Kubernetes"; the chart sets them).</summary>
public sealed class KubernetesOptions
{
    /// <summary>The namespace runs live in (default: the controller's own, from the service account; else "default").</summary>
    public string? Namespace { get; set; }

    /// <summary>A kubeconfig file to use instead of the in-cluster configuration (development).</summary>
    public string? Kubeconfig { get; set; }

    /// <summary>The API server address (tests: a fake server); overrides kubeconfig and in-cluster configuration.</summary>
    public string? ApiServer { get; set; }

    public string TeacherImage { get; set; } = "distill-mesh/teacher:latest";

    public string TrainerImage { get; set; } = "distill-mesh/trainer:latest";

    public string ExtractorImage { get; set; } = "distill-mesh/extractor:latest";

    public string ImagePullPolicy { get; set; } = "IfNotPresent";

    /// <summary>The service account the run's pods use.</summary>
    public string? ServiceAccount { get; set; }

    /// <summary>Redis for teacher caches (precompute jobs and teacher Deployments).</summary>
    public string? Redis { get; set; }

    /// <summary>The registry publish stages push to when the spec names none.</summary>
    public string Registry { get; set; } = "http://distill-registry:7103";

    /// <summary>Where the run's pods report progress (the controller's own Service).</summary>
    public string? ReportTo { get; set; }

    /// <summary>A Secret with the mesh's bearer token (key "token"), mounted into every pod.</summary>
    public string? TokenSecret { get; set; }

    /// <summary>
    /// A Secret with the mesh's TLS material (tls.crt, tls.key, ca.crt), mounted into every pod:
    /// they trust ca.crt, teacher pods serve https with tls.crt/tls.key (probed on the plaintext
    /// health port, as Kubernetes gRPC probes cannot speak TLS), and teacher addresses are https.
    /// </summary>
    public string? TlsSecret { get; set; }

    /// <summary>A Prometheus scrape port (GET /metrics) for every run and teacher pod, as the container port named "metrics"; null: none.</summary>
    public int? MetricsPort { get; set; }

    /// <summary>Environment variables every run and teacher pod gets (e.g. OTEL_EXPORTER_OTLP_ENDPOINT).</summary>
    public Dictionary<string, string> PodEnvironment { get; set; } = new(StringComparer.Ordinal);

    /// <summary>How long a pod may stay unschedulable before its run fails, when the run does not say.</summary>
    public long UnschedulableGraceSeconds { get; set; } = 1800;

    /// <summary>The device and GPUs of a teacher Deployment for runs submitted through the runs API (a CR may say otherwise).</summary>
    public string TeacherDevice { get; set; } = "cuda";

    public int TeacherGpus { get; set; } = 1;

    /// <summary>The idle timeout of a teacher Deployment for runs submitted through the runs API.</summary>
    public long TeacherIdleTimeoutSeconds { get; set; } = 900;

    /// <summary>GPUs each stage's pods request for runs submitted through the runs API.</summary>
    public Dictionary<string, int> StageGpus { get; set; } = new() { ["precompute"] = 1, ["train"] = 1, ["extract"] = 0, ["evaluate"] = 1, ["publish"] = 0 };

    /// <summary>The claims runs submitted through the runs API mount (a DistillationRun names its own in spec.storage).</summary>
    public string RunsClaim { get; set; } = "distill-runs";

    public string ModelsClaim { get; set; } = "distill-models";

    /// <summary>Runs reconciled at once.</summary>
    public int Concurrency { get; set; } = 4;

    /// <summary>Re-reads every run this often even without events.</summary>
    public TimeSpan Resync { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Leader election: lease duration, renew deadline and retry period.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(15);

    public TimeSpan RenewDeadline { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan RetryPeriod { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>This replica's identity in the lease (default: the pod name, else the machine name).</summary>
    public string? Identity { get; set; }
}
