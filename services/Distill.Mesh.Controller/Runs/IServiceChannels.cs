using Distill.Mesh.ServiceDefaults;
using Grpc.Core;

namespace Distill.Mesh.Controller.Runs;

/// <summary>Call invokers for service addresses.</summary>
public interface IServiceChannels
{
    CallInvoker For(string endpoint);
}

/// <summary>The mesh's shared channels (TLS trust and limits from the Mesh settings).</summary>
public sealed class GrpcServiceChannels(MeshChannels channels) : IServiceChannels
{
    public CallInvoker For(string endpoint) => channels.For(endpoint).CreateCallInvoker();
}
