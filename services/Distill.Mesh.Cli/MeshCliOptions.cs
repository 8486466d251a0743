using System.CommandLine;
using Distill.Mesh.ServiceDefaults;

namespace Distill.Mesh.Cli;

/// <summary>The options every command that calls a mesh service shares.</summary>
internal static class MeshCliOptions
{
    /// <summary>
    /// <c>--token</c>: the bearer token calls carry (see <c>Mesh:AuthToken</c>). The environment is
    /// better: <c>DISTILL_TOKEN</c>, or <c>DISTILL_TOKEN_FILE</c> naming a file that holds it (a
    /// command line is visible to every user of the machine in <c>ps</c>).
    /// </summary>
    public static Option<string?> Token(string service) => new("--token") { Description = $"bearer token for calls to {service} (better: DISTILL_TOKEN or DISTILL_TOKEN_FILE in the environment)" };

    /// <summary><c>--tls-trust</c>: PEM certificates to trust for an https service.</summary>
    public static Option<string?> Trust(string service) => new("--tls-trust") { Description = $"PEM certificate(s) to trust for https calls to {service} (self-signed or private CA)" };

    /// <summary>The token: --token, else DISTILL_TOKEN, else the content of DISTILL_TOKEN_FILE (an unreadable or empty file is an error).</summary>
    public static string? TokenValue(ParseResult parse, Option<string?> option) =>
        parse.GetValue(option) ?? EnvironmentToken();

    /// <inheritdoc cref="TokenValue"/>
    public static string? EnvironmentToken() =>
        Environment.GetEnvironmentVariable("DISTILL_TOKEN") is { Length: > 0 } token ? token
        : Environment.GetEnvironmentVariable("DISTILL_TOKEN_FILE") is { Length: > 0 } file ? MeshAuth.ReadTokenFile(file, "DISTILL_TOKEN_FILE")
        : null;

    /// <summary>Where <c>distill up</c> keeps the token it generates (relative to the folder it runs in).</summary>
    public static readonly string LocalTokenFile = Path.Combine(".distill", "mesh", "token");

    /// <summary>
    /// The token for calls to <paramref name="address"/>: the given one, else the environment's,
    /// else — for a loopback address only — the one `distill up` wrote in <see cref="LocalTokenFile"/>.
    /// </summary>
    public static string? TokenFor(string address, string? given) =>
        given ?? EnvironmentToken() ?? (Uri.TryCreate(address, UriKind.Absolute, out var uri) && uri.IsLoopback && File.Exists(LocalTokenFile)
            ? MeshAuth.ReadTokenFile(LocalTokenFile, LocalTokenFile)
            : null);

    /// <summary>A channel to <paramref name="address"/> whose every call carries the token (<see cref="TokenFor"/>).</summary>
    public static Grpc.Net.Client.GrpcChannel Channel(ParseResult parse, string address, Option<string?>? trust, Option<string?>? token) =>
        MeshTls.CreateChannel(address, trust is null ? null : parse.GetValue(trust), token: TokenFor(address, token is null ? null : parse.GetValue(token)));

    /// <summary>Headers carrying the token from <paramref name="option"/> or the environment.</summary>
    public static Grpc.Core.Metadata Headers(ParseResult parse, Option<string?> option) => MeshAuth.Headers(TokenValue(parse, option));
}
