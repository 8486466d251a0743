using Distill.Mesh.Contracts.Trainer.V1;
using Distill.Mesh.Trainer.Runs;
using Grpc.Core;
using ContractEvent = Distill.Mesh.Contracts.Trainer.V1.TrainEvent;
using EngineEvent = Distill.Mesh.Training.Recipes.TrainEvent;

namespace Distill.Mesh.Trainer.Grpc;

/// <summary>Thin handlers over <see cref="RunManager"/>: validate, map, delegate.</summary>
public sealed class TrainerGrpcService(RunManager runs) : TrainerService.TrainerServiceBase
{
    public const string StartMethod = "/distill.trainer.v1.TrainerService/Start";
    public const string CancelMethod = "/distill.trainer.v1.TrainerService/Cancel";

    public override Task<RunInfo> Start(StartRequest request, ServerCallContext context) =>
        Task.FromResult(Info(runs.Start(new RunSpec(request.RunId, request.ConfigYaml, [.. request.Overrides], string.IsNullOrEmpty(request.TeacherEndpoint) ? null : request.TeacherEndpoint))));

    public override Task<RunInfo> Cancel(CancelRequest request, ServerCallContext context) => Task.FromResult(Info(runs.Cancel(request.RunId)));

    public override Task<ListResponse> List(ListRequest request, ServerCallContext context)
    {
        var response = new ListResponse();
        response.Runs.AddRange(runs.Runs.OrderBy(r => r.Spec.RunId, StringComparer.Ordinal).Select(Info));
        return Task.FromResult(response);
    }

    public override async Task Watch(WatchRequest request, IServerStreamWriter<ContractEvent> responseStream, ServerCallContext context)
    {
        var run = runs.Get(request.RunId);
        await foreach (var (e, status) in run.WatchAsync(context.CancellationToken))
            await responseStream.WriteAsync(Map(run.Spec.RunId, e, status), context.CancellationToken);
    }

    private static RunInfo Info(RunManager.Run run)
    {
        var last = run.Last;
        return new RunInfo
        {
            RunId = run.Spec.RunId,
            State = State(run.Status),
            Step = last?.Step ?? 0,
            TotalSteps = last?.TotalSteps ?? 0,
            OutputDir = run.Folder,
            Error = run.Error ?? "",
            Recipe = run.Recipe,
        };
    }

    private static RunState State(RunStatus status) => status switch
    {
        RunStatus.Running => RunState.Running,
        RunStatus.Succeeded => RunState.Succeeded,
        RunStatus.Failed => RunState.Failed,
        RunStatus.Cancelled => RunState.Cancelled,
        _ => RunState.Interrupted,
    };

    private static ContractEvent Map(string runId, EngineEvent e, RunStatus status)
    {
        var mapped = new ContractEvent
        {
            RunId = runId,
            Step = e.Step,
            TotalSteps = e.TotalSteps,
            Loss = e.Loss,
            KdLoss = e.KdLoss,
            CeLoss = e.CeLoss,
            LearningRate = e.LearningRate,
            GradNorm = double.IsNaN(e.GradNorm) ? 0 : e.GradNorm,
            TokensPerSecond = e.TokensPerSecond,
            Tokens = e.Tokens,
            Message = e.Message ?? "",
            State = State(status),
        };
        if (e.Eval is { } eval)
        {
            mapped.Eval = new EvalMetrics { Perplexity = eval.Perplexity, Tokens = eval.Tokens };
            if (eval.KlToTeacher is { } kl)
                mapped.Eval.KlToTeacher = kl;
            if (eval.Top1Agreement is { } top1)
                mapped.Eval.Top1Agreement = top1;
        }

        return mapped;
    }
}
