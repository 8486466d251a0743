using Grpc.Core;
using Grpc.Net.Client;

namespace Distill.Mesh.Controller.Runs;

/// <summary>Call invokers for service addresses (one shared channel per address).</summary>
public interface IServiceChannels
{
    CallInvoker For(string endpoint);
}

public sealed class GrpcServiceChannels : IServiceChannels, IDisposable
{
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);

    public CallInvoker For(string endpoint)
    {
        lock (_channels)
        {
            if (!_channels.TryGetValue(endpoint, out var channel))
                _channels[endpoint] = channel = GrpcChannel.ForAddress(endpoint);
            return channel.CreateCallInvoker();
        }
    }

    public void Dispose()
    {
        foreach (var channel in _channels.Values)
            channel.Dispose();
    }
}
