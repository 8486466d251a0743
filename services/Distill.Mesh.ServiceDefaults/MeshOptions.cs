namespace Distill.Mesh.ServiceDefaults;

/// <summary>
/// Settings every service shares (configuration section "Mesh"; environment variables
/// <c>Mesh__Port</c>, <c>Mesh__AuthTokenFile</c>, ...).
/// </summary>
public sealed class MeshOptions
{
    /// <summary>
    /// Address the service listens on: an IP address, <c>*</c> (every interface, what a container
    /// wants) or <c>localhost</c>. The default (appsettings.json) is 127.0.0.1.
    /// </summary>
    public string ListenAddress { get; set; } = "127.0.0.1";

    /// <summary>Port of the gRPC endpoint (HTTP/2; https when <see cref="TlsCertificate"/> is set); 0 picks a free one. Null: the host decides (tests).</summary>
    public int? Port { get; set; }

    /// <summary>
    /// Port of a Prometheus scrape endpoint (<c>GET /metrics</c>, plain HTTP/1.1 on
    /// <see cref="ListenAddress"/>); null: none. The OTLP exporter is separate
    /// (OTEL_EXPORTER_OTLP_ENDPOINT).
    /// </summary>
    public int? MetricsPort { get; set; }

    /// <summary>
    /// Port of a plaintext HTTP/2 endpoint that serves grpc.health.v1 only (every other path: 404),
    /// for Kubernetes gRPC probes, which cannot speak TLS; null: none (probe the gRPC port).
    /// </summary>
    public int? HealthPort { get; set; }

    /// <summary>When set, calls must carry "authorization: Bearer &lt;token&gt;" (which calls: <see cref="AuthScope"/>).</summary>
    public string? AuthToken { get; set; }

    /// <summary>
    /// Which calls the token guards: "mutating" (Submit, Start, Cancel, Push, Tag, Delete, Extract
    /// and the progress stream) or "all" (reads and the teacher's Score and Generate too). Health
    /// checks stay open either way (the kubelet probes them).
    /// </summary>
    public string AuthScope { get; set; } = MeshAuth.ScopeMutating;

    /// <summary>
    /// A file holding the token (a mounted Kubernetes Secret): read once at start, surrounding
    /// whitespace trimmed. An empty or missing file stops the service from starting, so auth is
    /// never silently off.
    /// </summary>
    public string? AuthTokenFile { get; set; }

    /// <summary>
    /// Hosts this service may send its token to besides loopback, single-label names and
    /// in-cluster names (*.svc, *.cluster.local): exact names or addresses, or "*.suffix". Calls to
    /// any other address a run spec names go without the token (and a warning is logged).
    /// </summary>
    public string[] TokenHosts { get; set; } = [];

    /// <summary>Largest message a service accepts or sends (well above the chunks services stream).</summary>
    public int MaxMessageBytes { get; set; } = 16 << 20;

    /// <summary>
    /// Certificate the service presents: a PEM file (with <see cref="TlsKey"/>) or a PKCS#12 file
    /// without a password. When set the service serves https only.
    /// </summary>
    public string? TlsCertificate { get; set; }

    /// <summary>PEM private key for a PEM <see cref="TlsCertificate"/>.</summary>
    public string? TlsKey { get; set; }

    /// <summary>
    /// PEM file of extra certificates this service trusts when it calls other services over https
    /// (a self-signed certificate or a private CA); the system store is always trusted too.
    /// </summary>
    public string? TlsTrust { get; set; }
}
