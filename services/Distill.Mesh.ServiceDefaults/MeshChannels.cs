using Grpc.Net.Client;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>
/// One shared gRPC channel per service address, opened with the mesh's TLS trust, message limits
/// and bearer token (on every call). Channels live as long as this object.
/// </summary>
/// <param name="options">The mesh settings (TLS trust, message limits).</param>
/// <param name="handlers">Addresses served by an in-memory handler instead of the network (a test host).</param>
public sealed class MeshChannels(IOptions<MeshOptions> options, IReadOnlyDictionary<string, HttpMessageHandler>? handlers = null) : IDisposable
{
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);

    public GrpcChannel For(string address)
    {
        lock (_channels)
        {
            if (!_channels.TryGetValue(address, out var channel))
            {
                _channels[address] = channel = handlers?.TryGetValue(address, out var handler) == true
                    ? GrpcChannel.ForAddress(address, MeshTls.WithToken(new GrpcChannelOptions { HttpHandler = handler, MaxReceiveMessageSize = options.Value.MaxMessageBytes, MaxSendMessageSize = options.Value.MaxMessageBytes }, address, options.Value.AuthToken))
                    : MeshTls.CreateChannel(address, options.Value.TlsTrust, options.Value.MaxMessageBytes, options.Value.AuthToken);
            }

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
