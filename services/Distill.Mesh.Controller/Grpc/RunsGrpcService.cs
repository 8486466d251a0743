using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Controller.Runs;
using Distill.Mesh.Contracts.Trainer.V1;
using Grpc.Core;

namespace Distill.Mesh.Controller.Grpc;

/// <summary>The runs API over the local backend: validate, map, delegate.</summary>
public sealed class RunsGrpcService(LocalRunBackend backend) : RunsService.RunsServiceBase
{
    public const string SubmitMethod = "/distill.runs.v1.RunsService/Submit";
    public const string CancelMethod = "/distill.runs.v1.RunsService/Cancel";

    public override async Task<Run> Submit(SubmitRequest request, ServerCallContext context) =>
        Map((await backend.SubmitAsync(request.RunId, request.SpecYaml, [.. request.Overrides], context.CancellationToken)).Info);

    public override async Task Watch(WatchRunRequest request, IServerStreamWriter<RunEvent> responseStream, ServerCallContext context)
    {
        await foreach (var e in backend.WatchAsync(request.RunId, context.CancellationToken))
            await responseStream.WriteAsync(new RunEvent { RunId = request.RunId, Stage = "train", Train = e }, context.CancellationToken);
    }

    public override async Task<Run> Get(GetRunRequest request, ServerCallContext context) => Map(await backend.GetAsync(request.RunId, context.CancellationToken));

    public override async Task<ListRunsResponse> List(ListRunsRequest request, ServerCallContext context)
    {
        var response = new ListRunsResponse();
        response.Runs.AddRange((await backend.ListAsync(context.CancellationToken)).Select(Map));
        return response;
    }

    public override async Task<Run> Cancel(CancelRunRequest request, ServerCallContext context) => Map(await backend.CancelAsync(request.RunId, context.CancellationToken));

    private static Run Map(RunInfo info) => new()
    {
        RunId = info.RunId,
        Stage = "train",
        State = info.State,
        Step = info.Step,
        TotalSteps = info.TotalSteps,
        OutputDir = info.OutputDir,
        Error = info.Error,
    };
}
