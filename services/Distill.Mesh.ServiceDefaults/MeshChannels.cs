using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>
/// One shared gRPC channel per service address, opened with the mesh's TLS trust, message limits
/// and bearer token (on every call to a host <see cref="TokenHosts"/> allows). Channels live as long
/// as this object.
/// </summary>
/// <param name="options">The mesh settings (TLS trust, message limits, token and its hosts).</param>
/// <param name="handlers">Addresses served by an in-memory handler instead of the network (a test host).</param>
/// <param name="logger">Warns once per address that is called without the token.</param>
public sealed class MeshChannels(IOptions<MeshOptions> options, IReadOnlyDictionary<string, HttpMessageHandler>? handlers = null, ILogger<MeshChannels>? logger = null) : IDisposable
{
    /// <summary>The token for calls to <paramref name="address"/>: the mesh's, unless the host is outside <see cref="MeshOptions.TokenHosts"/>.</summary>
    public string? TokenFor(string address)
    {
        var token = options.Value.AuthToken;
        if (string.IsNullOrEmpty(token) || TokenHosts.Allows(address, options.Value.TokenHosts))
            return token;
        (logger ?? NullLogger<MeshChannels>.Instance).LogWarning(
            "Calls to {Address} go without the mesh token: its host is not loopback, in-cluster or listed in Mesh:TokenHosts", address);
        return null;
    }

    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);

    public GrpcChannel For(string address)
    {
        lock (_channels)
        {
            if (!_channels.TryGetValue(address, out var channel))
            {
                var token = TokenFor(address);
                _channels[address] = channel = handlers?.TryGetValue(address, out var handler) == true
                    ? GrpcChannel.ForAddress(address, MeshTls.WithToken(new GrpcChannelOptions { HttpHandler = handler, MaxReceiveMessageSize = options.Value.MaxMessageBytes, MaxSendMessageSize = options.Value.MaxMessageBytes }, address, token))
                    : MeshTls.CreateChannel(address, options.Value.TlsTrust, options.Value.MaxMessageBytes, token);
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
