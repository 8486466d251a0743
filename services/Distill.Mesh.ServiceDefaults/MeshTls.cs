using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Grpc.Net.Client;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>Optional TLS: the server certificate a service presents and the channels clients open.</summary>
public static class MeshTls
{
    /// <summary>The configured server certificate, or null when TLS is off.</summary>
    public static X509Certificate2? LoadServerCertificate(MeshOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.TlsCertificate))
            return null;
        var path = options.TlsCertificate;
        if (!File.Exists(path))
            throw new FileNotFoundException($"Mesh:TlsCertificate: '{path}' does not exist", path);
        try
        {
            if (Path.GetExtension(path).ToLowerInvariant() is ".pfx" or ".p12")
                return X509CertificateLoader.LoadPkcs12FromFile(path, password: null);
            if (string.IsNullOrWhiteSpace(options.TlsKey))
                throw new InvalidOperationException($"Mesh:TlsCertificate '{path}' is PEM, so Mesh:TlsKey must name its private key file");
            if (!File.Exists(options.TlsKey))
                throw new FileNotFoundException($"Mesh:TlsKey: '{options.TlsKey}' does not exist", options.TlsKey);
            var certificate = X509Certificate2.CreateFromPemFile(path, options.TlsKey);
            if (!certificate.HasPrivateKey)
                throw new InvalidOperationException($"Mesh:TlsKey '{options.TlsKey}' holds no private key for '{path}'");
            return certificate;
        }
        catch (System.Security.Cryptography.CryptographicException e)
        {
            throw new InvalidOperationException($"Mesh:TlsCertificate '{path}' could not be read: {e.Message}", e);
        }
    }

    /// <summary>HTTP/2 stream window of mesh clients and servers (the .NET client's default is 64 KiB).</summary>
    public const int Http2WindowBytes = 8 << 20;

    /// <summary>
    /// A channel to <paramref name="address"/>; https addresses also trust the certificates in
    /// <paramref name="trustPath"/> (PEM), checked as a chain to one of them, host name included.
    /// </summary>
    public static GrpcChannel CreateChannel(string address, string? trustPath, int maxMessageBytes = 16 << 20, string? token = null)
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            InitialHttp2StreamWindowSize = Http2WindowBytes,
        };
        if (!string.IsNullOrWhiteSpace(trustPath))
        {
            var roots = LoadTrust(trustPath);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) => Trusted(certificate, errors, roots);
        }

        return GrpcChannel.ForAddress(address, WithToken(new GrpcChannelOptions
        {
            HttpHandler = handler,
            MaxReceiveMessageSize = maxMessageBytes,
            MaxSendMessageSize = maxMessageBytes,
            DisposeHttpClient = true,
        }, address, token));
    }

    /// <summary>
    /// Every call on the channel carries <paramref name="token"/> (when there is one), reads
    /// included: a mesh whose Mesh:AuthScope is "all" checks them too. Plain-http channels are
    /// allowed call credentials: inside a cluster the mesh may run without TLS.
    /// </summary>
    public static GrpcChannelOptions WithToken(GrpcChannelOptions options, string address, string? token)
    {
        if (string.IsNullOrEmpty(token))
            return options;
        var credentials = Grpc.Core.CallCredentials.FromInterceptor((_, metadata) =>
        {
            metadata.Add(MeshAuth.Header, MeshAuth.Scheme + token);
            return Task.CompletedTask;
        });
        var https = address.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
        options.Credentials = Grpc.Core.ChannelCredentials.Create(https ? Grpc.Core.ChannelCredentials.SecureSsl : Grpc.Core.ChannelCredentials.Insecure, credentials);
        options.UnsafeUseInsecureChannelCallCredentials = !https;
        return options;
    }

    private static X509Certificate2Collection LoadTrust(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"TLS trust file '{path}' does not exist", path);
        var roots = new X509Certificate2Collection();
        roots.ImportFromPemFile(path);
        if (roots.Count == 0)
            throw new InvalidOperationException($"TLS trust file '{path}' holds no PEM certificate");
        return roots;
    }

    private static bool Trusted(X509Certificate? presented, SslPolicyErrors errors, X509Certificate2Collection roots)
    {
        if (errors == SslPolicyErrors.None)
            return true;
        // A wrong host name or a missing certificate is never rescued by the extra roots.
        if (presented is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0)
            return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var certificate = new X509Certificate2(presented);
        return chain.Build(certificate);
    }
}
