using Grpc.Core;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>The bearer token on the wire: what clients send and <see cref="BearerTokenInterceptor"/> checks.</summary>
public static class MeshAuth
{
    public const string Header = "authorization";

    public const string Scheme = "Bearer ";

    /// <summary>Call headers carrying <paramref name="token"/>; empty when there is none.</summary>
    public static Metadata Headers(string? token) => string.IsNullOrEmpty(token) ? [] : new Metadata { { Header, Scheme + token } };
}
