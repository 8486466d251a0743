namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>
/// A request path taken apart: a discovery document (<c>/api</c>, <c>/apis/g</c>, <c>/apis/g/v</c>, <c>/version</c>)
/// or a resource path <c>/api/v1[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]</c> (or <c>/apis/{g}/{v}/…</c>,
/// with the legacy <c>/watch/</c> prefix too).
/// </summary>
internal sealed record ApiRoute(string Group, string? Version, string? Plural, string? Namespace, string? Name, string? Subresource, bool LegacyWatch)
{
    /// <summary>For a discovery path: "version", "versions" (/api), "groups" (/apis), "group" or "resources".</summary>
    public string? Document { get; init; }

    /// <summary>The route, or null when the path is nothing the API server serves.</summary>
    public static ApiRoute? Parse(string path)
    {
        var segments = path.Trim('/').Split('/');
        return segments switch
        {
            ["version"] => Discovery("version", "", null),
            ["api"] => Discovery("versions", "", null),
            ["apis"] => Discovery("groups", "", null),
            ["apis", var group] => Discovery("group", group, null),
            ["api", var version] => Discovery("resources", "", version),
            ["apis", var group, var version] => Discovery("resources", group, version),
            ["api", var version, .. var rest] => Resource("", version, rest),
            // CustomObjects calls with the core group ("") ask for /apis//v1/...: serve them as /api/v1/....
            ["apis", var group, var version, .. var rest] => Resource(group, version, rest),
            _ => null,
        };
    }

    private static ApiRoute Discovery(string document, string group, string? version) =>
        new(group, version, null, null, null, null, false) { Document = document };

    private static ApiRoute? Resource(string group, string version, string[] rest)
    {
        var watch = rest is ["watch", _, ..];
        if (watch)
            rest = rest[1..];
        string? ns = null;
        // namespaces/{ns}/{resource}..., but namespaces/{name}/status is the Namespace object's own subresource.
        if (rest is ["namespaces", var n, var next, ..] && !(rest.Length == 3 && next is "status" or "finalize"))
        {
            ns = n;
            rest = rest[2..];
        }

        return rest switch
        {
            [var plural] => new ApiRoute(group, version, plural, ns, null, null, watch),
            [var plural, var name] => new ApiRoute(group, version, plural, ns, name, null, watch),
            [var plural, var name, var sub] => new ApiRoute(group, version, plural, ns, name, sub, watch),
            _ => null,
        };
    }
}
