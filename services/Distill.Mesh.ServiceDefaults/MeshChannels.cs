using Grpc.Net.Client;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>
/// One shared gRPC channel per service address, opened with the mesh's TLS trust and message
/// limits. Channels live as long as this object.
/// </summary>
public sealed class MeshChannels(IOptions<MeshOptions> options) : IDisposable
{
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);

    public GrpcChannel For(string address)
    {
        lock (_channels)
        {
            if (!_channels.TryGetValue(address, out var channel))
                _channels[address] = channel = MeshTls.CreateChannel(address, options.Value.TlsTrust, options.Value.MaxMessageBytes);
            return channel;
        }
    }

    public void Dispose()
    {
        lock (_channels)
        {
            foreach (var channel in _channels.Values)
                channel.Dispose();
            _channels.Clear();
        }
    }
}
