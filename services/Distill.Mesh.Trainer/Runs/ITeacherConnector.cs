using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Trainer.Runs;

/// <summary>Reaches a teacher service by address.</summary>
public interface ITeacherConnector
{
    Task<ITeacherSignal> ConnectAsync(string endpoint, CancellationToken cancellationToken);
}

/// <summary>Connects over the mesh's shared channel for the endpoint.</summary>
public sealed class GrpcTeacherConnector(MeshChannels channels) : ITeacherConnector
{
    public async Task<ITeacherSignal> ConnectAsync(string endpoint, CancellationToken cancellationToken) =>
        await RemoteTeacher.ConnectAsync(channels.For(endpoint).CreateCallInvoker(), cancellationToken: cancellationToken);
}
