using System.Globalization;
using System.Text.Json.Nodes;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>
/// The objects, the global resourceVersion counter and the event history, behind one lock so that every write,
/// its event and its fan-out to watches happen in resourceVersion order. Stored objects are never mutated in place:
/// a write builds a new object and replaces the old one, so snapshots in the history stay valid.
/// </summary>
internal sealed partial class ObjectStore
{
    private readonly object _gate = new();
    private readonly Dictionary<ObjectKey, JsonObject> _objects = [];
    private readonly HashSet<string> _uids = new(StringComparer.Ordinal);

    // Uids deleted with propagationPolicy=Orphan while finalizers held them: their dependents are orphaned on removal.
    private readonly HashSet<string> _orphanOnRemoval = new(StringComparer.Ordinal);
    private long _resourceVersion;

    public long ResourceVersion
    {
        get
        {
            lock (_gate)
                return _resourceVersion;
        }
    }

    public JsonObject? Get(ApiResource resource, string ns, string name)
    {
        lock (_gate)
            return _objects.TryGetValue(new ObjectKey(resource, ns, name), out var obj) ? (JsonObject)obj.DeepClone() : null;
    }

    /// <summary>Matching objects in key order (namespace, then name), as etcd lists them, with the current resourceVersion.</summary>
    public (List<JsonObject> Items, long ResourceVersion) List(ApiResource resource, string? ns, LabelSelector labels, FieldSelector fields)
    {
        lock (_gate)
        {
            var items = _objects
                .Where(kv => kv.Key.Resource == resource && (ns is null || kv.Key.Namespace == ns) && labels.Matches(kv.Value) && fields.Matches(kv.Value))
                .OrderBy(kv => kv.Key.Namespace, StringComparer.Ordinal)
                .ThenBy(kv => kv.Key.Name, StringComparer.Ordinal)
                .Select(kv => (JsonObject)kv.Value.DeepClone())
                .ToList();
            return (items, _resourceVersion);
        }
    }

    /// <summary>Creates an object; with <paramref name="keepStatus"/> false a status subresource's status is dropped, as on a client create.</summary>
    public JsonObject Create(ApiResource resource, string ns, JsonObject body, bool keepStatus)
    {
        var obj = (JsonObject)body.DeepClone();
        var meta = Metadata(obj);
        lock (_gate)
        {
            var name = Text(meta, "name");
            if (string.IsNullOrEmpty(name))
            {
                var prefix = Text(meta, "generateName");
                if (string.IsNullOrEmpty(prefix))
                    throw ApiError.Invalid($"{resource.Kind} is invalid: metadata.name: Required value: name or generateName is required");
                do
                    name = ObjectNames.Generate(prefix);
                while (_objects.ContainsKey(new ObjectKey(resource, ns, name)));
            }

            ObjectNames.Validate(resource, name);
            var key = new ObjectKey(resource, ns, name);
            if (_objects.ContainsKey(key))
                throw ApiError.AlreadyExists(resource, name);

            obj["apiVersion"] = resource.ApiVersion;
            obj["kind"] = resource.Kind;
            meta["name"] = name;
            if (resource.Namespaced)
                meta["namespace"] = ns;
            else
                meta.Remove("namespace");
            meta["uid"] = Guid.NewGuid().ToString();
            meta["creationTimestamp"] = ObjectNames.Timestamp(DateTime.UtcNow);
            meta["generation"] = 1;
            meta.Remove("deletionTimestamp");
            meta.Remove("deletionGracePeriodSeconds");
            if (!keepStatus && resource.StatusSubresource)
                obj.Remove("status");
            ApplyDefaults(resource, obj);
            return Clone(Commit(key, previous: null, obj, "ADDED"));
        }
    }

    /// <summary>
    /// Replaces an object with what <paramref name="propose"/> makes of a copy of it, honouring a resourceVersion
    /// precondition in the proposal, the status subresource split, generation and finalizers.
    /// </summary>
    public JsonObject Update(ApiResource resource, string ns, string name, Func<JsonObject, JsonObject> propose, WriteScope scope)
    {
        lock (_gate)
        {
            var key = new ObjectKey(resource, ns, name);
            if (!_objects.TryGetValue(key, out var current))
                throw ApiError.NotFound(resource, name);
            var proposed = propose((JsonObject)current.DeepClone());
            var currentVersion = Text(Metadata(current), "resourceVersion");
            var proposedVersion = Text(Metadata(proposed), "resourceVersion");
            if (scope != WriteScope.Everything && !string.IsNullOrEmpty(proposedVersion) && proposedVersion != currentVersion)
                throw ApiError.Conflict(resource, name, "the object has been modified; please apply your changes to the latest version and try again");

            var next = scope switch
            {
                WriteScope.Status => WithStatusOf((JsonObject)current.DeepClone(), proposed),
                WriteScope.Main when resource.StatusSubresource => WithStatusOf(proposed, current),
                _ => proposed,
            };
            KeepSystemFields(resource, current, next);
            next = Normalize(next);
            if (scope != WriteScope.Status && !JsonNode.DeepEquals(WithoutMetadataAndStatus(current), WithoutMetadataAndStatus(next)))
                Metadata(next)["generation"] = Number(Metadata(current)["generation"]) + 1;

            if (Metadata(current).ContainsKey("deletionTimestamp") && Finalizers(next).Any(f => !Finalizers(current).Any(c => JsonNode.DeepEquals(c, f))))
                throw ApiError.Invalid($"{resource.Kind} \"{name}\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted");

            // The real server neither bumps resourceVersion nor sends an event for a write that changes nothing.
            if (JsonNode.DeepEquals(current, next))
                return Clone(current);
            if (Metadata(next).ContainsKey("deletionTimestamp") && Finalizers(next).Count == 0)
                return Clone(RemoveLocked(key, current, next, orphan: false));
            return Clone(Commit(key, current, next, "MODIFIED"));
        }
    }

    /// <summary>Deletes an object, or only marks it with a deletionTimestamp while finalizers remain.</summary>
    public (JsonObject Object, bool Removed) Delete(ApiResource resource, string ns, string name, DeletionOptions options)
    {
        lock (_gate)
        {
            var key = new ObjectKey(resource, ns, name);
            if (!_objects.TryGetValue(key, out var current))
                throw ApiError.NotFound(resource, name);
            var meta = Metadata(current);
            if (options.Uid is { } uid && uid != Text(meta, "uid"))
                throw ApiError.Conflict(resource, name, $"Precondition failed: UID in precondition: {uid}, UID in object meta: {Text(meta, "uid")}");
            if (options.ResourceVersion is { } rv && rv != Text(meta, "resourceVersion"))
                throw ApiError.Conflict(resource, name, $"Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {Text(meta, "resourceVersion")}");
            return DeleteLocked(key, current, options.Orphan);
        }
    }

    private (JsonObject Object, bool Removed) DeleteLocked(ObjectKey key, JsonObject current, bool orphan)
    {
        if (Finalizers(current).Count == 0)
            return (Clone(RemoveLocked(key, current, (JsonObject)current.DeepClone(), orphan)), true);
        if (Metadata(current).ContainsKey("deletionTimestamp"))
            return (Clone(current), false);

        var marked = (JsonObject)current.DeepClone();
        Metadata(marked)["deletionTimestamp"] = ObjectNames.Timestamp(DateTime.UtcNow);
        Metadata(marked)["deletionGracePeriodSeconds"] = 0;
        if (orphan)
            _orphanOnRemoval.Add(Text(Metadata(current), "uid") ?? "");
        return (Clone(Commit(key, current, marked, "MODIFIED")), false);
    }

    private JsonObject RemoveLocked(ObjectKey key, JsonObject current, JsonObject final, bool orphan)
    {
        var removed = Commit(key, current, final, "DELETED");
        var uid = Text(Metadata(current), "uid") ?? "";
        orphan |= _orphanOnRemoval.Remove(uid);
        CollectDependents(uid, orphan);
        return removed;
    }

    /// <summary>
    /// The garbage collector's part, done at once: dependents whose only live owner is gone are deleted (with the
    /// same finalizer rules, recursively); orphaned dependents, or ones with another live owner, lose the reference.
    /// </summary>
    private void CollectDependents(string ownerUid, bool orphan)
    {
        var dependents = _objects.Where(kv => OwnerUids(kv.Value).Contains(ownerUid)).Select(kv => kv.Key).ToList();
        foreach (var key in dependents)
        {
            if (!_objects.TryGetValue(key, out var dependent))
                continue;
            if (orphan || OwnerUids(dependent).Any(uid => uid != ownerUid && _uids.Contains(uid)))
            {
                var next = (JsonObject)dependent.DeepClone();
                var owners = (JsonArray)Metadata(next)["ownerReferences"]!;
                for (var i = owners.Count - 1; i >= 0; i--)
                {
                    if (owners[i]?["uid"]?.GetValue<string>() == ownerUid)
                        owners.RemoveAt(i);
                }

                Commit(key, dependent, next, "MODIFIED");
            }
            else
            {
                DeleteLocked(key, dependent, orphan: false);
            }
        }
    }

    private JsonObject Commit(ObjectKey key, JsonObject? previous, JsonObject next, string type)
    {
        var version = ++_resourceVersion;
        Metadata(next)["resourceVersion"] = version.ToString(CultureInfo.InvariantCulture);
        next = Normalize(next);
        var uid = Text(Metadata(next), "uid") ?? "";
        if (type == "DELETED")
        {
            _objects.Remove(key);
            _uids.Remove(uid);
        }
        else
        {
            _objects[key] = next;
            _uids.Add(uid);
        }

        Publish(new StoredEvent(type, key, next, previous, version));
        return next;
    }

    private static void ApplyDefaults(ApiResource resource, JsonObject obj)
    {
        if (resource is { Group: "apps", Plural: "deployments" } && obj["spec"] is JsonObject spec && !spec.ContainsKey("replicas"))
            spec["replicas"] = 1;
        if (resource is { Group: "", Plural: "pods" } && !obj.ContainsKey("status"))
            obj["status"] = new JsonObject { ["phase"] = "Pending" };
    }

    private static void KeepSystemFields(ApiResource resource, JsonObject current, JsonObject next)
    {
        next["apiVersion"] = resource.ApiVersion;
        next["kind"] = resource.Kind;
        var from = Metadata(current);
        var to = Metadata(next);
        foreach (var field in new[] { "name", "namespace", "uid", "creationTimestamp", "generation", "generateName", "deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion" })
        {
            if (from.TryGetPropertyValue(field, out var value))
                to[field] = value?.DeepClone();
            else
                to.Remove(field);
        }
    }

    private static JsonObject WithStatusOf(JsonObject target, JsonObject source)
    {
        if (source.TryGetPropertyValue("status", out var status))
            target["status"] = status?.DeepClone();
        else
            target.Remove("status");
        return target;
    }

    private static JsonObject WithoutMetadataAndStatus(JsonObject obj)
    {
        var copy = (JsonObject)obj.DeepClone();
        copy.Remove("metadata");
        copy.Remove("status");
        return copy;
    }

    internal static JsonObject Metadata(JsonObject obj)
    {
        if (obj["metadata"] is JsonObject meta)
            return meta;
        meta = [];
        obj["metadata"] = meta;
        return meta;
    }

    internal static string? Text(JsonObject obj, string field) =>
        obj[field] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static List<JsonNode?> Finalizers(JsonObject obj) =>
        Metadata(obj)["finalizers"] is JsonArray list ? [.. list] : [];

    private static IEnumerable<string> OwnerUids(JsonObject obj) =>
        (Metadata(obj)["ownerReferences"] as JsonArray ?? []).Select(o => o?["uid"]?.GetValue<string>()).OfType<string>();

    private static JsonObject Clone(JsonObject obj) => (JsonObject)obj.DeepClone();

    /// <summary>Reparses an object so that every value is backed the same way and compares equal to its stored twin.</summary>
    private static JsonObject Normalize(JsonObject obj) => (JsonObject)JsonNode.Parse(obj.ToJsonString())!;

    private static long Number(JsonNode? node) =>
        node is not null && long.TryParse(node.ToJsonString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : 1;
}
