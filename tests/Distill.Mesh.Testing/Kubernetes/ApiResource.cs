namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>A resource the fake API server serves: what discovery lists and what the store keys objects by.</summary>
/// <param name="Group">API group; "" for the core group.</param>
/// <param name="Version">API version within the group, e.g. "v1".</param>
/// <param name="Plural">The resource name in URLs, e.g. "deployments".</param>
/// <param name="Kind">The object kind, e.g. "Deployment".</param>
/// <param name="Namespaced">Whether objects live in a namespace.</param>
/// <param name="StatusSubresource">Whether writes to the main resource keep the stored status and /status writes change only status.</param>
/// <param name="ScaleSubresource">Whether /scale maps an autoscaling/v1 Scale onto spec.replicas.</param>
/// <param name="ReturnsDeletedObject">Whether DELETE answers with the object (pods, services...) rather than a Status, as the real registry does.</param>
/// <param name="OrphansByDefault">Whether a DELETE without a propagationPolicy orphans dependents (batch/v1 Jobs, kept for compatibility by the real server).</param>
public sealed record ApiResource(
    string Group,
    string Version,
    string Plural,
    string Kind,
    bool Namespaced = true,
    bool StatusSubresource = false,
    bool ScaleSubresource = false,
    bool ReturnsDeletedObject = false,
    bool OrphansByDefault = false)
{
    /// <summary>The apiVersion objects of this resource carry ("v1", "apps/v1").</summary>
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary>The kind of a list of these objects.</summary>
    public string ListKind => Kind + "List";

    /// <summary>Group and resource as RBAC and error messages name it ("deployments.apps").</summary>
    public string QualifiedName => Group.Length == 0 ? Plural : $"{Plural}.{Group}";

    internal static IReadOnlyList<ApiResource> BuiltIn { get; } =
    [
        new("", "v1", "pods", "Pod", StatusSubresource: true, ReturnsDeletedObject: true),
        new("", "v1", "services", "Service", StatusSubresource: true, ReturnsDeletedObject: true),
        new("", "v1", "configmaps", "ConfigMap"),
        new("", "v1", "secrets", "Secret"),
        new("", "v1", "events", "Event"),
        new("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", StatusSubresource: true, ReturnsDeletedObject: true),
        new("", "v1", "serviceaccounts", "ServiceAccount", ReturnsDeletedObject: true),
        new("", "v1", "namespaces", "Namespace", Namespaced: false, StatusSubresource: true),
        new("", "v1", "nodes", "Node", Namespaced: false, StatusSubresource: true),
        new("apps", "v1", "deployments", "Deployment", StatusSubresource: true, ScaleSubresource: true),
        new("batch", "v1", "jobs", "Job", StatusSubresource: true, OrphansByDefault: true),
        new("coordination.k8s.io", "v1", "leases", "Lease"),
        new("events.k8s.io", "v1", "events", "Event"),
    ];
}
