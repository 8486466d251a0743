namespace Distill.Mesh.ServiceDefaults;

/// <summary>Settings every service shares (configuration section "Mesh").</summary>
public sealed class MeshOptions
{
    /// <summary>When set, mutating calls must carry "authorization: Bearer &lt;token&gt;".</summary>
    public string? AuthToken { get; set; }

    /// <summary>Largest message a service accepts or sends (well above the chunks services stream).</summary>
    public int MaxMessageBytes { get; set; } = 16 << 20;
}
