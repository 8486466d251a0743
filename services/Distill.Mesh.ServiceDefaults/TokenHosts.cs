using System.Net;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>
/// Where a service may send the mesh token: a run spec names addresses (teacher endpoints, the
/// publish registry), and the token must not follow a spec to a host outside the mesh. Allowed by
/// default: loopback, single-label names (a Service in the same namespace) and in-cluster names
/// (*.svc, *.cluster.local); <see cref="MeshOptions.TokenHosts"/> adds more.
/// </summary>
public static class TokenHosts
{
    /// <summary>True when calls to <paramref name="address"/> may carry the token.</summary>
    public static bool Allows(string address, IReadOnlyList<string>? extra)
    {
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Host.Length == 0)
            return false;
        var host = uri.IdnHost.TrimEnd('.').ToLowerInvariant();
        if (uri.IsLoopback || host == "localhost")
            return true;
        if (extra is not null && extra.Any(pattern => Matches(host, pattern.Trim().ToLowerInvariant())))
            return true;
        if (IPAddress.TryParse(host.Trim('[', ']'), out _))
            return false;
        return !host.Contains('.') || host.EndsWith(".svc", StringComparison.Ordinal) || host.EndsWith(".cluster.local", StringComparison.Ordinal);
    }

    /// <summary>An exact host name or address, or "*.suffix" for every name under suffix.</summary>
    private static bool Matches(string host, string pattern) =>
        pattern.StartsWith("*.", StringComparison.Ordinal)
            ? host.EndsWith(pattern[1..], StringComparison.Ordinal) && host.Length > pattern.Length - 1
            : host == pattern.Trim('[', ']') || host.Trim('[', ']') == pattern.Trim('[', ']');
}
