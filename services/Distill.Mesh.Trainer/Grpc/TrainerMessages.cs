using Distill.Mesh.Contracts.Trainer.V1;
using Distill.Mesh.Trainer.Runs;
using Google.Protobuf.WellKnownTypes;
using ContractEvent = Distill.Mesh.Contracts.Trainer.V1.TrainEvent;
using ContractState = Distill.Mesh.Contracts.Trainer.V1.RunState;
using EngineEvent = Distill.Mesh.Training.Recipes.TrainEvent;
using EngineEval = Distill.Mesh.Training.Recipes.EvalResult;

namespace Distill.Mesh.Trainer.Grpc;

/// <summary>A trainer's runs and their updates as trainer.v1 messages (Watch, List, and the progress a job pod reports).</summary>
public static class TrainerMessages
{
    public static RunInfo Info(TrainerRun run)
    {
        var last = run.Last;
        var info = new RunInfo
        {
            RunId = run.RunId,
            State = State(run.Status),
            Step = last?.Step ?? 0,
            TotalSteps = last?.TotalSteps ?? 0,
            OutputDir = run.Folder,
            Error = run.Error ?? "",
            Recipe = run.Recipe,
            SpecSha256 = run.Record.Sha256,
            Created = Timestamp.FromDateTime(DateTime.SpecifyKind(run.Record.Created, DateTimeKind.Utc)),
            Artifact = run.Artifact ?? "",
            Note = run.Note ?? "",
        };
        info.Stages.AddRange(run.Stages.Select(Stage));
        return info;
    }

    public static ContractState State(RunStatus status) => status switch
    {
        RunStatus.Running => ContractState.Running,
        RunStatus.Succeeded => ContractState.Succeeded,
        RunStatus.Failed => ContractState.Failed,
        RunStatus.Cancelled => ContractState.Cancelled,
        _ => ContractState.Interrupted,
    };

    public static ContractState State(StageState state) => state switch
    {
        StageState.Running => ContractState.Running,
        StageState.Succeeded => ContractState.Succeeded,
        StageState.Failed => ContractState.Failed,
        StageState.Cancelled => ContractState.Cancelled,
        StageState.Interrupted => ContractState.Interrupted,
        _ => ContractState.Unspecified,
    };

    public static StageInfo Stage(StageRecord stage)
    {
        var info = new StageInfo
        {
            Name = stage.Name,
            State = State(stage.State),
            Message = stage.Message,
            Done = stage.Done,
            Total = stage.Total,
            Artifact = stage.Name == Specs.Runs.Stage.Publish ? stage.Output ?? "" : "",
        };
        if (stage.Started is { } started)
            info.Started = Timestamp.FromDateTime(DateTime.SpecifyKind(started, DateTimeKind.Utc));
        if (stage.Ended is { } ended)
            info.Ended = Timestamp.FromDateTime(DateTime.SpecifyKind(ended, DateTimeKind.Utc));
        if (stage.Eval is { } eval)
            info.Eval = Eval(eval);
        return info;
    }

    public static EvalMetrics Eval(EngineEval eval)
    {
        var metrics = new EvalMetrics { Perplexity = eval.Perplexity, Tokens = eval.Tokens };
        if (eval.KlToTeacher is { } kl)
            metrics.KlToTeacher = kl;
        if (eval.Top1Agreement is { } top1)
            metrics.Top1Agreement = top1;
        return metrics;
    }

    /// <summary>A step event carries its step; a stage event its stage; the closing event the run's final state and message (with the last step).</summary>
    public static ContractEvent Event(string runId, RunUpdate update, EngineEvent? last)
    {
        var e = update.Step ?? last ?? new EngineEvent(0, 0, 0, 0, 0, 0, 0, 0, 0);
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
            Message = update.Message ?? (update.Step is not null ? e.Message : null) ?? "",
            State = State(update.Status),
        };
        if (update.Step?.Eval is { } eval)
            mapped.Eval = Eval(eval);
        if (update.Stage is { } stage)
            mapped.Stage = Stage(stage);
        return mapped;
    }
}
