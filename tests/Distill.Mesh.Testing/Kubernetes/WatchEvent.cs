using System.Text.Json.Nodes;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>A change the fake API server committed, as a watch would report it.</summary>
/// <param name="Type">ADDED, MODIFIED or DELETED.</param>
/// <param name="Resource">The resource the object belongs to.</param>
/// <param name="Object">A copy of the object after the change (for DELETED, its last state).</param>
public sealed record WatchEvent(string Type, ApiResource Resource, JsonObject Object)
{
    /// <summary>The object's namespace ("" for cluster-scoped objects).</summary>
    public string Namespace => Object["metadata"]?["namespace"]?.GetValue<string>() ?? "";

    /// <summary>The object's name.</summary>
    public string Name => Object["metadata"]?["name"]?.GetValue<string>() ?? "";
}
