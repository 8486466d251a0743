using System.Security.Cryptography;
using System.Text;
using Distill.Mesh.Controller.Kubernetes.Entities;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Resources;

/// <summary>
/// Teachers served on the cluster: one Deployment and headless Service per (model, dtype, device),
/// shared by every run that needs that teacher. Each such run is an owner (not the controlling
/// one), so the teacher goes when the last run that used it is deleted; between runs the scaler
/// takes it to zero replicas.
/// </summary>
public static class TeacherPool
{
    public const int Port = 7101;

    /// <summary>teacher-xxxxxxxxxx: stable for the same teacher, whatever run asks for it.</summary>
    public static string Name(TeacherSpec teacher) =>
        "teacher-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{teacher.Model}\n{teacher.Dtype}\n{teacher.Device}")))[..10];

    /// <summary>The address runs reach the teacher at (the Service in the run's namespace).</summary>
    public static string Endpoint(TeacherSpec teacher, string? ns, bool tls = false) => $"{(tls ? "https" : "http")}://{Name(teacher)}{(ns is null ? "" : $".{ns}.svc")}:{Port}";

    private static Dictionary<string, string> Selector(TeacherSpec teacher) => new() { [Labels.Teacher] = Name(teacher) };

    private static V1ObjectMeta Metadata(DistillationRun run, TeacherSpec teacher) => new()
    {
        Name = Name(teacher),
        NamespaceProperty = run.Metadata.NamespaceProperty,
        Labels = new Dictionary<string, string>
        {
            [Labels.Name] = "distill-mesh",
            [Labels.Component] = "teacher",
            [Labels.ManagedBy] = Labels.Controller,
            [Labels.PartOf] = "distill-mesh",
            [Labels.Teacher] = Name(teacher),
        },
        OwnerReferences = [Labels.Owner(run) with { Controller = false }],
    };

    public static V1Deployment Deployment(DistillationRun run, TeacherSpec teacher, int replicas, KubernetesOptions options)
    {
        var environment = new Dictionary<string, string>
        {
            ["Teacher__Model"] = teacher.Model ?? throw new InvalidOperationException("spec.teacher.model is required for a teacher Deployment"),
            ["Teacher__Dtype"] = teacher.Dtype,
            ["Teacher__Device"] = teacher.Device,
        };
        if (options.Redis is { } redis)
            environment["Teacher__Redis"] = redis;
        var pod = PodTemplates.Build(run, "teacher", null, options.TeacherImage, environment, teacher.Resources, PodTemplates.Mounts.Models, options, grpcPort: Port, restartAlways: true);
        pod.Metadata.Labels = new Dictionary<string, string>(Metadata(run, teacher).Labels);
        var metadata = Metadata(run, teacher);
        metadata.Annotations = new Dictionary<string, string> { [Scaling.TeacherScaler.IdleTimeout] = teacher.IdleTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        return new V1Deployment
        {
            ApiVersion = "apps/v1",
            Kind = "Deployment",
            Metadata = metadata,
            Spec = new V1DeploymentSpec
            {
                Replicas = replicas,
                Selector = new V1LabelSelector { MatchLabels = Selector(teacher) },
                Template = pod,
            },
        };
    }

    /// <summary>A headless Service: clients resolve every ready teacher pod.</summary>
    public static V1Service Service(DistillationRun run, TeacherSpec teacher) => new()
    {
        ApiVersion = "v1",
        Kind = "Service",
        Metadata = Metadata(run, teacher),
        Spec = new V1ServiceSpec
        {
            ClusterIP = "None",
            Selector = Selector(teacher),
            Ports = [new V1ServicePort { Name = "grpc", Port = Port, TargetPort = Port, AppProtocol = "kubernetes.io/h2c" }],
        },
    };
}
