using System.Text.Json.Nodes;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>
/// One committed change. <see cref="Object"/> and <see cref="Previous"/> are snapshots the store never mutates again
/// (every write replaces the stored object), read only under the store's lock.
/// </summary>
internal sealed class StoredEvent(string type, ObjectKey key, JsonObject obj, JsonObject? previous, long resourceVersion)
{
    private string? _json;

    public string Type { get; } = type;

    public ObjectKey Key { get; } = key;

    public JsonObject Object { get; } = obj;

    public JsonObject? Previous { get; } = previous;

    public long ResourceVersion { get; } = resourceVersion;

    /// <summary>The object as sent on the wire, serialized once however many watches receive it.</summary>
    public string Json => _json ??= Object.ToJsonString();
}
