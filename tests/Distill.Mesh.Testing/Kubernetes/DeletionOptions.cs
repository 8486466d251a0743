namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>The parts of DeleteOptions the fake honours.</summary>
/// <param name="Orphan">propagationPolicy=Orphan: dependents lose their owner reference instead of being deleted.</param>
/// <param name="Uid">preconditions.uid: delete only this incarnation of the name.</param>
/// <param name="ResourceVersion">preconditions.resourceVersion: delete only if unchanged.</param>
internal sealed record DeletionOptions(bool Orphan = false, string? Uid = null, string? ResourceVersion = null)
{
    public static DeletionOptions Background { get; } = new();
}
