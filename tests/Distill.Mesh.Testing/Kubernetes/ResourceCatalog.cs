using System.Collections.Concurrent;
using System.Text.Json.Nodes;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>The resources the server knows (built-in ones and custom resources registered at run time) and their discovery documents.</summary>
internal sealed class ResourceCatalog
{
    private static readonly string[] Verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
    private static readonly string[] SubresourceVerbs = ["get", "patch", "update"];

    private readonly ConcurrentDictionary<(string Group, string Version, string Plural), ApiResource> _resources = new();

    public ResourceCatalog()
    {
        foreach (var resource in ApiResource.BuiltIn)
            Add(resource);
    }

    public void Add(ApiResource resource) => _resources[(resource.Group, resource.Version, resource.Plural)] = resource;

    public ApiResource? Find(string group, string version, string plural) =>
        _resources.GetValueOrDefault((group, version, plural));

    /// <summary>The resource or an ArgumentException naming what is registered (for the test-facing methods).</summary>
    public ApiResource Require(string group, string version, string plural) =>
        Find(group, version, plural) ?? throw new ArgumentException($"{plural} in \"{group}/{version}\" is not a resource this fake serves; register it with RegisterCustomResource");

    /// <summary>The discovery document a discovery route names, or null (a 404) for an unknown group or version.</summary>
    public JsonObject? Document(ApiRoute route, Uri address) => route.Document switch
    {
        "version" => new JsonObject
        {
            ["major"] = "1",
            ["minor"] = "34",
            ["gitVersion"] = "v1.34.0-distill-fake",
            ["gitCommit"] = "0000000000000000000000000000000000000000",
            ["gitTreeState"] = "clean",
            ["buildDate"] = "2025-01-01T00:00:00Z",
            ["goVersion"] = "go1.24",
            ["compiler"] = "gc",
            ["platform"] = "linux/amd64",
        },
        "versions" => new JsonObject
        {
            ["kind"] = "APIVersions",
            ["versions"] = new JsonArray("v1"),
            ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = address.Authority }),
        },
        "groups" => new JsonObject
        {
            ["kind"] = "APIGroupList",
            ["apiVersion"] = "v1",
            ["groups"] = new JsonArray([.. Groups().Select(g => (JsonNode)Group(g.Key, g.Value))]),
        },
        "group" => Groups().TryGetValue(route.Group, out var versions) ? Group(route.Group, versions) : null,
        "resources" => Resources(route.Group, route.Version!),
        _ => null,
    };

    private SortedDictionary<string, List<string>> Groups()
    {
        var groups = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var resource in _resources.Values.Where(r => r.Group.Length > 0))
        {
            if (!groups.TryGetValue(resource.Group, out var versions))
                groups[resource.Group] = versions = [];
            if (!versions.Contains(resource.Version))
                versions.Add(resource.Version);
        }

        return groups;
    }

    private static JsonObject Group(string name, List<string> versions)
    {
        JsonObject Version(string v) => new() { ["groupVersion"] = $"{name}/{v}", ["version"] = v };
        return new JsonObject
        {
            ["kind"] = "APIGroup",
            ["apiVersion"] = "v1",
            ["name"] = name,
            ["versions"] = new JsonArray([.. versions.Select(v => (JsonNode)Version(v))]),
            ["preferredVersion"] = Version(versions[0]),
        };
    }

    private JsonObject? Resources(string group, string version)
    {
        var resources = _resources.Values.Where(r => r.Group == group && r.Version == version).OrderBy(r => r.Plural, StringComparer.Ordinal).ToList();
        if (resources.Count == 0)
            return null;
        var list = new JsonArray();
        foreach (var r in resources)
        {
            list.Add(Entry(r.Plural, r.Kind.ToLowerInvariant(), r.Namespaced, r.Kind, Verbs));
            if (r.StatusSubresource)
                list.Add(Entry($"{r.Plural}/status", "", r.Namespaced, r.Kind, SubresourceVerbs));
            if (r.ScaleSubresource)
            {
                var scale = Entry($"{r.Plural}/scale", "", r.Namespaced, "Scale", SubresourceVerbs);
                scale["group"] = "autoscaling";
                scale["version"] = "v1";
                list.Add(scale);
            }
        }

        return new JsonObject
        {
            ["kind"] = "APIResourceList",
            ["apiVersion"] = "v1",
            ["groupVersion"] = group.Length == 0 ? version : $"{group}/{version}",
            ["resources"] = list,
        };
    }

    private static JsonObject Entry(string name, string singular, bool namespaced, string kind, string[] verbs) => new()
    {
        ["name"] = name,
        ["singularName"] = singular,
        ["namespaced"] = namespaced,
        ["kind"] = kind,
        ["verbs"] = new JsonArray([.. verbs.Select(v => (JsonNode)v)]),
    };
}
