using System.Text.Json.Nodes;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>The /scale view of an object: an autoscaling/v1 Scale over <c>spec.replicas</c> and <c>status.replicas</c>.</summary>
internal static class ScaleSubresource
{
    public static JsonObject From(JsonObject obj)
    {
        var meta = ObjectStore.Metadata(obj);
        var scaleMeta = new JsonObject();
        foreach (var field in new[] { "name", "namespace", "uid", "resourceVersion", "creationTimestamp" })
        {
            if (meta.TryGetPropertyValue(field, out var value))
                scaleMeta[field] = value?.DeepClone();
        }

        var status = new JsonObject { ["replicas"] = obj["status"]?["replicas"]?.DeepClone() ?? 0 };
        if (obj["spec"]?["selector"]?["matchLabels"] is JsonObject matchLabels)
            status["selector"] = string.Join(",", matchLabels.Select(l => $"{l.Key}={l.Value?.GetValue<string>()}"));
        return new JsonObject
        {
            ["kind"] = "Scale",
            ["apiVersion"] = "autoscaling/v1",
            ["metadata"] = scaleMeta,
            ["spec"] = new JsonObject { ["replicas"] = obj["spec"]?["replicas"]?.DeepClone() ?? 0 },
            ["status"] = status,
        };
    }

    /// <summary>The object with the Scale's spec.replicas (and resourceVersion, so a stale Scale conflicts).</summary>
    public static JsonObject Apply(JsonObject obj, JsonObject scale)
    {
        if (scale["spec"]?["replicas"] is not JsonValue replicas || !replicas.TryGetValue<int>(out var count) || count < 0)
            throw ApiError.Invalid("Scale is invalid: spec.replicas: Invalid value: must be a non-negative integer");
        if (obj["spec"] is not JsonObject spec)
            obj["spec"] = spec = [];
        spec["replicas"] = count;
        var meta = ObjectStore.Metadata(obj);
        if (ObjectStore.Text(ObjectStore.Metadata(scale), "resourceVersion") is { Length: > 0 } version)
            meta["resourceVersion"] = version;
        return obj;
    }
}
