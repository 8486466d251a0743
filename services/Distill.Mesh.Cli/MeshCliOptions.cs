using System.CommandLine;

namespace Distill.Mesh.Cli;

/// <summary>The options every command that calls a mesh service shares.</summary>
internal static class MeshCliOptions
{
    /// <summary><c>--token</c>: the bearer token mutating calls carry (see <c>Mesh:AuthToken</c>).</summary>
    public static Option<string?> Token(string service) => new("--token") { Description = $"bearer token for mutating calls to {service}" };

    /// <summary><c>--tls-trust</c>: PEM certificates to trust for an https service.</summary>
    public static Option<string?> Trust(string service) => new("--tls-trust") { Description = $"PEM certificate(s) to trust for https calls to {service} (self-signed or private CA)" };
}
