using Distill.Mesh.Contracts.Runs.V1;
using Google.Protobuf.WellKnownTypes;
using Trainer = Distill.Mesh.Contracts.Trainer.V1;

namespace Distill.Mesh.Controller.Runs;

/// <summary>The trainer's view of a run (trainer.v1) in the runs API's terms (runs.v1).</summary>
public static class TrainerRunMapping
{
    public static Run ToRun(Trainer.RunInfo info)
    {
        var run = new Run
        {
            RunId = info.RunId,
            Phase = Phase(info.State),
            OutputDir = info.OutputDir,
            SpecSha256 = info.SpecSha256,
            Created = info.Created,
            Artifact = info.Artifact,
            Progress = new TrainProgress { Step = info.Step, TotalSteps = info.TotalSteps },
        };
        run.Stages.AddRange(info.Stages.Select(ToStage));
        run.CurrentStage = run.Stages.FirstOrDefault(s => s.State == StageState.Running)?.Name ?? "";
        run.Reason = info.State switch
        {
            Trainer.RunState.Failed => info.Error,
            Trainer.RunState.Interrupted => "interrupted; it resumes when its trainer starts again",
            Trainer.RunState.Cancelled => "cancelled by the user; its checkpoints are kept",
            Trainer.RunState.Succeeded => info.Note,
            _ => "",
        };
        return run;
    }

    public static RunPhase Phase(Trainer.RunState state) => state switch
    {
        Trainer.RunState.Running => RunPhase.Running,
        Trainer.RunState.Succeeded => RunPhase.Succeeded,
        Trainer.RunState.Failed => RunPhase.Failed,
        Trainer.RunState.Cancelled => RunPhase.Cancelled,
        _ => RunPhase.Pending,
    };

    private static StageState State(Trainer.RunState state) => state switch
    {
        Trainer.RunState.Running => StageState.Running,
        Trainer.RunState.Succeeded => StageState.Succeeded,
        Trainer.RunState.Failed => StageState.Failed,
        Trainer.RunState.Cancelled => StageState.Cancelled,
        _ => StageState.Pending,
    };

    public static StageStatus ToStage(Trainer.StageInfo stage) => new()
    {
        Name = stage.Name,
        State = State(stage.State),
        Message = stage.Message,
        Started = stage.Started,
        Ended = stage.Ended,
        Done = stage.Done,
        Total = stage.Total,
    };

    private static EvalMetrics? Eval(Trainer.EvalMetrics? eval)
    {
        if (eval is null)
            return null;
        var metrics = new EvalMetrics { Perplexity = eval.Perplexity, Tokens = eval.Tokens };
        if (eval.HasKlToTeacher)
            metrics.KlToTeacher = eval.KlToTeacher;
        if (eval.HasTop1Agreement)
            metrics.Top1Agreement = eval.Top1Agreement;
        return metrics;
    }

    /// <summary>
    /// One trainer event as a run event: a stage that started or ended, a stage's progress, the
    /// evaluate or publish result, or a train step. The stream's closing event (a final state) is
    /// left to the caller, which sends the run's snapshot.
    /// </summary>
    public static RunEvent? ToEvent(Trainer.TrainEvent e)
    {
        var mapped = new RunEvent { RunId = e.RunId, Time = Timestamp.FromDateTime(DateTime.UtcNow), Phase = RunPhase.Running };
        if (e.Stage is { } stage)
        {
            mapped.Stage = stage.Name;
            switch (stage.State)
            {
                case Trainer.RunState.Running when stage.Done == 0 && stage.Total == 0:
                    mapped.Transition = new StageTransition { State = StageState.Running, Message = stage.Message };
                    break;
                case Trainer.RunState.Running:
                    mapped.Progress = new StageProgress { Done = stage.Done, Total = stage.Total, Detail = stage.Message };
                    break;
                case Trainer.RunState.Succeeded when stage.Name == "evaluate" && stage.Eval is not null:
                    mapped.Evaluate = new EvaluateResult { Metrics = Eval(stage.Eval), Dataset = stage.Message };
                    break;
                case Trainer.RunState.Succeeded when stage.Name == "publish":
                    mapped.Publish = new PublishResult { Artifact = stage.Artifact };
                    break;
                default:
                    mapped.Transition = new StageTransition { State = State(stage.State), Message = stage.Message };
                    break;
            }

            return mapped;
        }

        if (e.State != Trainer.RunState.Running)
            return null;
        mapped.Stage = "train";
        mapped.Train = new TrainProgress
        {
            Step = e.Step,
            TotalSteps = e.TotalSteps,
            Loss = e.Loss,
            KdLoss = e.KdLoss,
            CeLoss = e.CeLoss,
            LearningRate = e.LearningRate,
            GradNorm = e.GradNorm,
            TokensPerSecond = e.TokensPerSecond,
            Tokens = e.Tokens,
            Eval = Eval(e.Eval),
            Message = e.Message,
        };
        return mapped;
    }
}
