using System.Diagnostics;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>The mesh's activity source: spans the services create themselves (cache, scoring, runs).</summary>
public static class MeshTelemetry
{
    public const string Name = "Distill.Mesh";

    public static readonly ActivitySource Source = new(Name);
}
