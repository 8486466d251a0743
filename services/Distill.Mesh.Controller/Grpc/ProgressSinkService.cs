using Distill.Mesh.Contracts.Trainer.V1;
using Distill.Mesh.Controller.Kubernetes.Progress;
using Distill.Mesh.Specs.Runs;
using Grpc.Core;

namespace Distill.Mesh.Controller.Grpc;

/// <summary>Where trainer job pods report their runs' events (Kubernetes backend).</summary>
public sealed class ProgressSinkService(ProgressRelay relay) : ProgressSink.ProgressSinkBase
{
    public const string ReportMethod = "/distill.trainer.v1.ProgressSink/Report";

    public override async Task<ReportResponse> Report(IAsyncStreamReader<TrainEvent> requestStream, ServerCallContext context)
    {
        long accepted = 0;
        await foreach (var e in requestStream.ReadAllAsync(context.CancellationToken))
        {
            RunIds.Check(e.RunId);
            await relay.ReportAsync(e, context.CancellationToken);
            accepted++;
        }

        return new ReportResponse { Accepted = accepted };
    }
}
