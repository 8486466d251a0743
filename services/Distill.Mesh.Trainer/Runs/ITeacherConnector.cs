using Distill.Mesh.Teacher.Client;
using Distill.Mesh.Training.Teachers;
using Grpc.Net.Client;

namespace Distill.Mesh.Trainer.Runs;

/// <summary>Reaches a teacher service by address.</summary>
public interface ITeacherConnector
{
    Task<ITeacherSignal> ConnectAsync(string endpoint, CancellationToken cancellationToken);
}

/// <summary>Connects over a gRPC channel per endpoint (channels are shared and kept).</summary>
public sealed class GrpcTeacherConnector : ITeacherConnector, IDisposable
{
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);

    public async Task<ITeacherSignal> ConnectAsync(string endpoint, CancellationToken cancellationToken)
    {
        GrpcChannel channel;
        lock (_channels)
        {
            if (!_channels.TryGetValue(endpoint, out channel!))
                _channels[endpoint] = channel = GrpcChannel.ForAddress(endpoint);
        }

        return await RemoteTeacher.ConnectAsync(channel.CreateCallInvoker(), cancellationToken: cancellationToken);
    }

    public void Dispose()
    {
        foreach (var channel in _channels.Values)
            channel.Dispose();
    }
}
