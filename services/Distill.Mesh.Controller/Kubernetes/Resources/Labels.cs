using Distill.Mesh.Controller.Kubernetes.Entities;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Resources;

/// <summary>The labels, names and owner references every object the operator creates carries.</summary>
public static class Labels
{
    public const string Name = "app.kubernetes.io/name";
    public const string Component = "app.kubernetes.io/component";
    public const string ManagedBy = "app.kubernetes.io/managed-by";
    public const string PartOf = "app.kubernetes.io/part-of";
    public const string Run = "distill.mesh.io/run";
    public const string Stage = "distill.mesh.io/stage";
    public const string Teacher = "distill.mesh.io/teacher";
    public const string KueueQueue = "kueue.x-k8s.io/queue-name";

    /// <summary>Annotation with the run spec's SHA-256 (the runs API's idempotency).</summary>
    public const string SpecSha256 = "distill.mesh.io/spec-sha256";

    /// <summary>The W3C traceparent of the Submit call: the run's pods continue its trace (env TRACEPARENT).</summary>
    public const string TraceParent = "distill.mesh.io/traceparent";

    /// <summary>Annotation set by Cancel: the run ends Cancelled instead of Suspended.</summary>
    public const string Cancelled = "distill.mesh.io/cancelled";

    public const string Controller = "distill-controller";

    /// <summary>Labels of a run's child for <paramref name="component"/>.</summary>
    public static Dictionary<string, string> For(DistillationRun run, string component, string? stage = null)
    {
        var labels = new Dictionary<string, string>
        {
            [Name] = "distill-mesh",
            [Component] = component,
            [ManagedBy] = Controller,
            [PartOf] = "distill-mesh",
            [Run] = run.Metadata.Name,
        };
        if (stage is not null)
            labels[Stage] = stage;
        return labels;
    }

    /// <summary>The run as its children's controlling owner (deleting the run deletes them).</summary>
    public static V1OwnerReference Owner(DistillationRun run) => new()
    {
        ApiVersion = DistillationRun.ApiVersionName,
        Kind = DistillationRun.KindName,
        Name = run.Metadata.Name,
        Uid = run.Metadata.Uid,
        Controller = true,
        BlockOwnerDeletion = true,
    };

    /// <summary>Metadata of a run's child.</summary>
    public static V1ObjectMeta Child(DistillationRun run, string name, string component, string? stage = null) => new()
    {
        Name = name,
        NamespaceProperty = run.Metadata.NamespaceProperty,
        Labels = For(run, component, stage),
        OwnerReferences = [Owner(run)],
    };

    /// <summary>The name of a run's child: run names are at most 40 characters, so these stay valid 63-character names (Job pods add about 17).</summary>
    public static string ChildName(DistillationRun run, string part) => $"{run.Metadata.Name}-{part}";
}
