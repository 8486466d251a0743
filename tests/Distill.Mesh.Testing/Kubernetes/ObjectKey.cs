namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>Where an object is stored: its resource (group, version, plural), namespace ("" when cluster-scoped) and name.</summary>
internal readonly record struct ObjectKey(ApiResource Resource, string Namespace, string Name);
