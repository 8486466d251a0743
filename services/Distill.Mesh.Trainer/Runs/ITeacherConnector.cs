using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Trainer.Runs;

/// <summary>Reaches a teacher service by address.</summary>
public interface ITeacherConnector
{
    Task<ITeacherSignal> ConnectAsync(string endpoint, CancellationToken cancellationToken);
}

/// <summary>Connects over the mesh's shared channel for the endpoint; a teacher that cannot be reached is named in the error.</summary>
public sealed class GrpcTeacherConnector(MeshChannels channels) : ITeacherConnector
{
    public async Task<ITeacherSignal> ConnectAsync(string endpoint, CancellationToken cancellationToken)
    {
        try
        {
            return await RemoteTeacher.ConnectAsync(channels.For(endpoint).CreateCallInvoker(), cancellationToken: cancellationToken);
        }
        catch (global::Grpc.Core.RpcException e) when (e.StatusCode is global::Grpc.Core.StatusCode.Unavailable or global::Grpc.Core.StatusCode.DeadlineExceeded)
        {
            throw new global::Grpc.Core.RpcException(new global::Grpc.Core.Status(e.StatusCode, $"the teacher service at {endpoint} is unreachable ({e.Status.Detail})"));
        }
    }
}
