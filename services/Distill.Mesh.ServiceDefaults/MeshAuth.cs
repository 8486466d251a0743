using Grpc.Core;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>The bearer token on the wire: what clients send and <see cref="BearerTokenInterceptor"/> checks.</summary>
public static class MeshAuth
{
    public const string Header = "authorization";

    public const string Scheme = "Bearer ";

    /// <summary><see cref="MeshOptions.AuthScope"/> values.</summary>
    public const string ScopeMutating = "mutating";

    /// <inheritdoc cref="ScopeMutating"/>
    public const string ScopeAll = "all";

    /// <summary>Call headers carrying <paramref name="token"/>; empty when there is none.</summary>
    public static Metadata Headers(string? token) => string.IsNullOrEmpty(token) ? [] : new Metadata { { Header, Scheme + token } };

    /// <summary>
    /// The token a service requires: Mesh:AuthToken, or the content of Mesh:AuthTokenFile. A file
    /// that cannot be read or holds nothing, or a file and a value that disagree, is an error.
    /// </summary>
    public static string? ResolveToken(MeshOptions options)
    {
        var token = string.IsNullOrWhiteSpace(options.AuthToken) ? null : options.AuthToken.Trim();
        if (string.IsNullOrWhiteSpace(options.AuthTokenFile))
            return token;
        return ReadTokenFile(options.AuthTokenFile, "Mesh:AuthTokenFile") is var fromFile && token is not null && token != fromFile
            ? throw new InvalidOperationException("Mesh:AuthToken and Mesh:AuthTokenFile are both set and differ; set one")
            : fromFile;
    }

    /// <summary>A token file's content, trimmed; missing, unreadable or empty files are errors naming <paramref name="setting"/>.</summary>
    public static string ReadTokenFile(string path, string setting)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"{setting} '{path}' cannot be read: {e.Message}", e);
        }

        return string.IsNullOrWhiteSpace(text) ? throw new InvalidOperationException($"{setting} '{path}' is empty") : text.Trim();
    }
}
