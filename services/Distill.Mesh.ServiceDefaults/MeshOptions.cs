namespace Distill.Mesh.ServiceDefaults;

/// <summary>Settings every service shares (configuration section "Mesh").</summary>
public sealed class MeshOptions
{
    /// <summary>When set, mutating calls must carry "authorization: Bearer &lt;token&gt;".</summary>
    public string? AuthToken { get; set; }

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
