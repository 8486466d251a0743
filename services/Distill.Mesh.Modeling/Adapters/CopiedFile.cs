namespace Distill.Mesh.Modeling.Adapters;

/// <summary>A companion file of the exported folder and where it came from ("base" or "adapter").</summary>
public sealed record CopiedFile(string Name, string From);
