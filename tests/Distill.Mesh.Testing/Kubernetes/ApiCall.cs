namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>One request the fake API server received, named as RBAC names it.</summary>
/// <param name="Verb">get, list, watch, create, update, patch, delete or deletecollection.</param>
/// <param name="Group">API group; "" for the core group.</param>
/// <param name="Resource">Plural resource name, e.g. "pods".</param>
/// <param name="Subresource">"status", "scale"..., or null for the main resource.</param>
/// <param name="Namespace">The request's namespace, or null for a cluster-wide request.</param>
public sealed record ApiCall(string Verb, string Group, string Resource, string? Subresource, string? Namespace)
{
    /// <summary>The resource as an RBAC rule names it: "pods" or "pods/status".</summary>
    public string RbacResource => Subresource is null ? Resource : $"{Resource}/{Subresource}";
}
