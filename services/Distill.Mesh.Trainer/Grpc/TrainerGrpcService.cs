using Distill.Mesh.Contracts.Trainer.V1;
using Distill.Mesh.Trainer.Runs;
using Grpc.Core;
using ContractEvent = Distill.Mesh.Contracts.Trainer.V1.TrainEvent;

namespace Distill.Mesh.Trainer.Grpc;

/// <summary>Thin handlers over <see cref="RunManager"/>: validate, map, delegate.</summary>
public sealed class TrainerGrpcService(RunManager runs) : TrainerService.TrainerServiceBase
{
    public const string StartMethod = "/distill.trainer.v1.TrainerService/Start";
    public const string CancelMethod = "/distill.trainer.v1.TrainerService/Cancel";

    public override Task<RunInfo> Start(StartRequest request, ServerCallContext context)
    {
        try
        {
            return Task.FromResult(TrainerMessages.Info(runs.Start(request.RunId, request.ConfigYaml, [.. request.Overrides], [.. request.Stages])));
        }
        catch (RunConflictException e)
        {
            throw new RpcException(new Status(StatusCode.AlreadyExists, e.Message));
        }
    }

    public override Task<RunInfo> Cancel(CancelRequest request, ServerCallContext context) => Task.FromResult(TrainerMessages.Info(runs.Cancel(request.RunId)));

    public override Task<ListResponse> List(ListRequest request, ServerCallContext context)
    {
        var response = new ListResponse();
        response.Runs.AddRange(runs.Runs.OrderBy(r => r.RunId, StringComparer.Ordinal).Select(TrainerMessages.Info));
        return Task.FromResult(response);
    }

    public override async Task Watch(WatchRequest request, IServerStreamWriter<ContractEvent> responseStream, ServerCallContext context)
    {
        var run = runs.Get(request.RunId);
        var last = run.Last;
        await foreach (var update in run.WatchAsync(context.CancellationToken))
        {
            last = update.Step ?? last;
            await responseStream.WriteAsync(TrainerMessages.Event(run.RunId, update, last), context.CancellationToken);
        }
    }
}
