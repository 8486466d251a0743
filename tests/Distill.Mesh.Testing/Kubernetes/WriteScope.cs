namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>Which part of an object a write may change.</summary>
internal enum WriteScope
{
    /// <summary>A client write to the main resource: status is kept when the resource has a status subresource.</summary>
    Main,

    /// <summary>A client write to /status: only status changes.</summary>
    Status,

    /// <summary>A server-side write by a test (a simulated kubelet or job controller): spec and status alike.</summary>
    Everything,
}
