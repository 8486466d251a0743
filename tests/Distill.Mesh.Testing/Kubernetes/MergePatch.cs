using System.Text.Json.Nodes;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>
/// JSON merge patch (RFC 7386) and the subset of strategic merge patch that controllers use: lists of objects
/// merge by their key (<c>containers</c>/<c>env</c>/<c>volumes</c> by name, <c>conditions</c> by type,
/// <c>ownerReferences</c> by uid...), <c>finalizers</c> merge as a set, and the <c>$patch: replace|delete</c>,
/// <c>$deleteFromPrimitiveList/…</c> directives are honoured; other <c>$</c> directives are ignored.
/// </summary>
internal static class MergePatch
{
    private const string DeleteFromPrimitiveList = "$deleteFromPrimitiveList/";

    private static readonly Dictionary<string, string> MergeKeys = new(StringComparer.Ordinal)
    {
        ["containers"] = "name",
        ["initContainers"] = "name",
        ["ephemeralContainers"] = "name",
        ["volumes"] = "name",
        ["env"] = "name",
        ["imagePullSecrets"] = "name",
        ["volumeMounts"] = "mountPath",
        ["volumeDevices"] = "devicePath",
        ["conditions"] = "type",
        ["ownerReferences"] = "uid",
        ["hostAliases"] = "ip",
        ["topologySpreadConstraints"] = "topologyKey",
    };

    private static readonly HashSet<string> PrimitiveSetLists = new(StringComparer.Ordinal) { "finalizers" };

    /// <summary>Applies <paramref name="patch"/> to a copy of <paramref name="target"/>; the inputs are not changed.</summary>
    public static JsonNode? Apply(JsonNode? target, JsonNode? patch, bool strategic)
    {
        if (patch is not JsonObject patchObject)
            return patch?.DeepClone();
        if (strategic && Directive(patchObject) == "replace")
            return WithoutDirectives(patchObject);

        var result = target is JsonObject targetObject ? (JsonObject)targetObject.DeepClone() : new JsonObject();
        foreach (var (key, value) in patchObject)
        {
            if (strategic && key.StartsWith(DeleteFromPrimitiveList, StringComparison.Ordinal))
            {
                RemovePrimitives(result, key[DeleteFromPrimitiveList.Length..], value as JsonArray);
                continue;
            }

            if (strategic && key.StartsWith('$'))
                continue;
            if (value is null || (strategic && value is JsonObject o && Directive(o) == "delete"))
            {
                result.Remove(key);
                continue;
            }

            result.TryGetPropertyValue(key, out var current);
            result[key] = strategic && value is JsonArray list && current is JsonArray currentList
                ? MergeList(key, currentList, list)
                : Apply(current, value, strategic);
        }

        return result;
    }

    private static JsonArray MergeList(string field, JsonArray current, JsonArray patch)
    {
        if (PrimitiveSetLists.Contains(field) && patch.All(n => n is JsonValue))
        {
            var union = (JsonArray)current.DeepClone();
            foreach (var item in patch.Where(item => !union.Any(existing => JsonNode.DeepEquals(existing, item))))
                union.Add(item?.DeepClone());
            return union;
        }

        var mergeKey = MergeKeyFor(field, patch);
        if (mergeKey is null)
            return (JsonArray)patch.DeepClone();

        var result = (JsonArray)current.DeepClone();
        foreach (var item in patch.OfType<JsonObject>())
        {
            var key = item[mergeKey]?.ToJsonString();
            var index = IndexOf(result, mergeKey, key);
            if (Directive(item) == "delete")
            {
                if (index >= 0)
                    result.RemoveAt(index);
            }
            else if (index >= 0)
            {
                result[index] = Apply(result[index], item, strategic: true);
            }
            else
            {
                result.Add(WithoutDirectives(item));
            }
        }

        return result;
    }

    private static string? MergeKeyFor(string field, JsonArray patch)
    {
        var key = MergeKeys.GetValueOrDefault(field);
        // Container ports merge by containerPort, service ports by port.
        if (field == "ports")
            key = patch.OfType<JsonObject>().Any(p => p.ContainsKey("containerPort")) ? "containerPort" : "port";
        return key is not null && patch.All(n => n is JsonObject o && (o.ContainsKey(key) || Directive(o) is not null)) ? key : null;
    }

    private static int IndexOf(JsonArray list, string mergeKey, string? key)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] is JsonObject o && o[mergeKey]?.ToJsonString() == key)
                return i;
        }

        return -1;
    }

    private static void RemovePrimitives(JsonObject result, string field, JsonArray? values)
    {
        if (values is null || result[field] is not JsonArray list)
            return;
        for (var i = list.Count - 1; i >= 0; i--)
        {
            if (values.Any(v => JsonNode.DeepEquals(v, list[i])))
                list.RemoveAt(i);
        }
    }

    private static string? Directive(JsonObject obj) =>
        obj.TryGetPropertyValue("$patch", out var d) && d is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static JsonObject WithoutDirectives(JsonObject obj)
    {
        var copy = (JsonObject)obj.DeepClone();
        foreach (var key in copy.Select(p => p.Key).Where(k => k.StartsWith('$')).ToList())
            copy.Remove(key);
        return copy;
    }
}
