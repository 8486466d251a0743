using Distill.Mesh.Controller.Kubernetes.Entities;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Resources;

/// <summary>
/// The pods the operator runs: one container of a mesh image, restricted security (non-root, no
/// privilege escalation, every capability dropped, read-only root filesystem, seccomp
/// RuntimeDefault; /tmp is an emptyDir), GPU requests with the NVIDIA toleration, and the run's
/// volumes: its spec (/etc/distill), the runs claim (/var/lib/distill/runs), the models claim
/// (/models, read-only), the mesh token and TLS material (Secrets, when configured); no
/// service account token.
/// </summary>
public static class PodTemplates
{
    /// <summary>The images' user (the .NET images' APP_UID).</summary>
    public const long User = 1654;

    public const string SpecFolder = "/etc/distill";
    public const string SpecFile = SpecFolder + "/run.json";
    public const string RunsFolder = "/var/lib/distill/runs";
    public const string ModelsFolder = "/models";
    public const string TokenFile = "/etc/distill-token/token";
    public const string TlsFolder = "/etc/distill-tls";

    /// <summary>The plaintext port teacher pods answer health probes on when the mesh uses TLS.</summary>
    public const int HealthPort = 7110;
    public const string Gpu = "nvidia.com/gpu";

    /// <summary>What a pod mounts.</summary>
    [Flags]
    public enum Mounts
    {
        None = 0,
        Spec = 1,
        Runs = 2,
        Models = 4,
    }

    public static V1PodTemplateSpec Build(DistillationRun run, string component, string? stage, string image, IDictionary<string, string> environment,
        PodResourcesSpec? resources, Mounts mounts, KubernetesOptions options, int? grpcPort = null, bool restartAlways = false)
    {
        var env = environment.Select(e => new V1EnvVar { Name = e.Key, Value = e.Value }).ToList();
        var volumes = new List<V1Volume> { new() { Name = "tmp", EmptyDir = new V1EmptyDirVolumeSource() } };
        var volumeMounts = new List<V1VolumeMount> { new() { Name = "tmp", MountPath = "/tmp" } };
        if (mounts.HasFlag(Mounts.Spec))
        {
            volumes.Add(new V1Volume { Name = "spec", ConfigMap = new V1ConfigMapVolumeSource { Name = SpecConfigMap.Name(run) } });
            volumeMounts.Add(new V1VolumeMount { Name = "spec", MountPath = SpecFolder, ReadOnlyProperty = true });
        }

        if (mounts.HasFlag(Mounts.Runs))
        {
            volumes.Add(new V1Volume { Name = "runs", PersistentVolumeClaim = new V1PersistentVolumeClaimVolumeSource { ClaimName = run.Spec.Storage.RunsClaim } });
            volumeMounts.Add(new V1VolumeMount { Name = "runs", MountPath = RunsFolder });
        }

        if (mounts.HasFlag(Mounts.Models))
        {
            volumes.Add(new V1Volume { Name = "models", PersistentVolumeClaim = new V1PersistentVolumeClaimVolumeSource { ClaimName = run.Spec.Storage.ModelsClaim, ReadOnlyProperty = true } });
            volumeMounts.Add(new V1VolumeMount { Name = "models", MountPath = ModelsFolder, ReadOnlyProperty = true });
        }

        if (options.TokenSecret is { } secret)
        {
            volumes.Add(new V1Volume { Name = "token", Secret = new V1SecretVolumeSource { SecretName = secret, Items = [new V1KeyToPath { Key = "token", Path = "token" }] } });
            volumeMounts.Add(new V1VolumeMount { Name = "token", MountPath = Path.GetDirectoryName(TokenFile)!, ReadOnlyProperty = true });
            env.Add(new V1EnvVar { Name = "Mesh__AuthTokenFile", Value = TokenFile });
        }

        if (options.TlsSecret is { } tls)
        {
            volumes.Add(new V1Volume { Name = "tls", Secret = new V1SecretVolumeSource { SecretName = tls } });
            volumeMounts.Add(new V1VolumeMount { Name = "tls", MountPath = TlsFolder, ReadOnlyProperty = true });
            env.Add(new V1EnvVar { Name = "Mesh__TlsTrust", Value = $"{TlsFolder}/ca.crt" });
            if (grpcPort is not null)
            {
                env.Add(new V1EnvVar { Name = "Mesh__TlsCertificate", Value = $"{TlsFolder}/tls.crt" });
                env.Add(new V1EnvVar { Name = "Mesh__TlsKey", Value = $"{TlsFolder}/tls.key" });
                env.Add(new V1EnvVar { Name = "Mesh__HealthPort", Value = HealthPort.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            }
        }

        if (options.MetricsPort is { } metricsPort)
            env.Add(new V1EnvVar { Name = "Mesh__MetricsPort", Value = metricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        foreach (var (name, value) in options.PodEnvironment.Where(e => env.All(v => v.Name != e.Key)))
            env.Add(new V1EnvVar { Name = name, Value = value });

        var gpus = resources?.Gpus ?? 0;
        var container = new V1Container
        {
            Name = component,
            Image = image,
            ImagePullPolicy = options.ImagePullPolicy,
            Env = env,
            VolumeMounts = volumeMounts,
            Resources = Requirements(resources),
            SecurityContext = new V1SecurityContext
            {
                AllowPrivilegeEscalation = false,
                ReadOnlyRootFilesystem = true,
                RunAsNonRoot = true,
                Capabilities = new V1Capabilities { Drop = ["ALL"] },
            },
        };
        var ports = new List<V1ContainerPort>();
        if (options.MetricsPort is { } scrape)
            ports.Add(new V1ContainerPort { ContainerPort = scrape, Name = "metrics", Protocol = "TCP" });
        container.Ports = ports.Count > 0 ? ports : null;
        if (grpcPort is { } port)
        {
            container.Ports = [new V1ContainerPort { ContainerPort = port, Name = "grpc", Protocol = "TCP" }, .. ports];
            var probed = options.TlsSecret is null ? port : HealthPort;
            container.ReadinessProbe = new V1Probe { Grpc = new V1GRPCAction { Port = probed, Service = "readiness" }, PeriodSeconds = 5, FailureThreshold = 3 };
            container.LivenessProbe = new V1Probe { Grpc = new V1GRPCAction { Port = probed, Service = "liveness" }, PeriodSeconds = 10, FailureThreshold = 6 };
            // A model load (and a first GPU allocation) may take minutes: liveness starts counting after it.
            container.StartupProbe = new V1Probe { Grpc = new V1GRPCAction { Port = probed, Service = "liveness" }, PeriodSeconds = 5, FailureThreshold = 360 };
        }

        var tolerations = (resources?.Tolerations ?? []).ToList();
        if (gpus > 0 && !tolerations.Any(t => t.Key == Gpu))
            tolerations.Add(new V1Toleration { Key = Gpu, OperatorProperty = "Exists", Effect = "NoSchedule" });
        var labels = Labels.For(run, component, stage);
        return new V1PodTemplateSpec
        {
            Metadata = new V1ObjectMeta { Labels = labels },
            Spec = new V1PodSpec
            {
                Containers = [container],
                Volumes = volumes,
                RestartPolicy = restartAlways ? "Always" : "Never",
                ServiceAccountName = options.ServiceAccount,
                // Run pods never call the Kubernetes API.
                AutomountServiceAccountToken = false,
                NodeSelector = resources?.NodeSelector,
                Tolerations = tolerations.Count > 0 ? tolerations : null,
                PriorityClassName = resources?.PriorityClassName,
                // Training checkpoints on SIGTERM; the trainer's own grace period is 2 minutes.
                TerminationGracePeriodSeconds = 150,
                SecurityContext = new V1PodSecurityContext
                {
                    RunAsNonRoot = true,
                    RunAsUser = User,
                    RunAsGroup = User,
                    FsGroup = User,
                    SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },
                },
            },
        };
    }

    /// <summary>Requests equal limits (CPU and memory as given; GPUs in both, as the device plugin wants).</summary>
    public static V1ResourceRequirements Requirements(PodResourcesSpec? resources)
    {
        var amounts = new Dictionary<string, ResourceQuantity>();
        if (resources?.Cpu is { } cpu)
            amounts["cpu"] = new ResourceQuantity(cpu);
        if (resources?.Memory is { } memory)
            amounts["memory"] = new ResourceQuantity(memory);
        if (resources is { Gpus: > 0 })
            amounts[Gpu] = new ResourceQuantity(resources.Gpus.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return new V1ResourceRequirements { Requests = amounts.Count > 0 ? amounts : null, Limits = amounts.Count > 0 ? new Dictionary<string, ResourceQuantity>(amounts) : null };
    }
}
