using System.Diagnostics;
using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Training.Configuration;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Evaluation;
using Distill.Mesh.Training.Teachers;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// Online logit distillation: the teacher scores each micro-batch in process; the student learns
/// (1 − kd_ratio)·CE + kd_ratio·KD, normalised over the trained tokens of the whole optimizer step.
/// One teacher, or a weighted mixture of several. Setup → train → checkpoint → outputs.
/// </summary>
public static class KdRecipe
{
    /// <param name="config">The run.</param>
    /// <param name="resolved">The resolved config to write with the outputs, if any.</param>
    /// <param name="progress">Receives step events.</param>
    /// <param name="cancellationToken">Stops the run at the next step boundary, with a checkpoint.</param>
    /// <param name="connect">Reaches a teacher some other way than loading it here (the trainer service: over gRPC).</param>
    public static async Task<TrainResult> RunAsync(TrainConfig config, JsonObject? resolved, IProgress<TrainEvent>? progress, CancellationToken cancellationToken, Func<TeacherConfig, ITeacherSignal>? connect = null)
    {
        if (config.Teachers.Count == 0)
            throw new ConfigException("the kd recipe needs at least one entry under 'teachers'");

        // Setup
        using var run = RecipeRun.Start(config, resolved);
        using var teacher = LoadTeachers(config, connect);
        var vocabulary = TeacherCompatibility.Check(teacher.Describe(), run.Tokenizer, run.Student.Config.VocabSize);
        await run.LoadDataAsync(vocabulary, cancellationToken);
        var lossOptions = TrainingFactory.Loss(config.Loss);
        if (config.Loss.Chunked && run.Student.LmHead?.Lora is not null)
            throw new ConfigException("loss.chunked uses the output weight directly; it cannot train a LoRA on lm_head (set loss.chunked=false)");
        var order = new DataOrder(run.Train, config.Training.BatchSize, config.Seed);
        var totalSteps = run.TotalSteps(order);
        var accumulation = Math.Max(1, config.Training.GradientAccumulation);
        using var optimizer = TrainingFactory.Optimizer(config.Training.Optimizer, run.Student.named_parameters().Select(p => (p.name, p.parameter)));
        var schedule = TrainingFactory.Schedule(config.Training.Scheduler, config.Training.Optimizer.Lr, totalSteps);
        var resumed = TrainingCheckpoint.TryResume(config.OutputDir, run.Student, optimizer);
        var history = resumed?.History ?? [];
        var step = resumed?.Step ?? 0;
        if (resumed is not null)
            progress?.Report(history[^1] with { Message = $"resumed from step {step}" });

        // Train
        while (step < totalSteps)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                TrainingCheckpoint.Save(config.OutputDir, step, run.Student, optimizer, history);
                return run.Finish(step, completed: false, history, null);
            }

            var watch = Stopwatch.StartNew();
            step++;
            optimizer.LearningRate = schedule.At(step);
            var batches = run.MicroBatches(order, step);
            var stepTokens = batches.Sum(b => b.TrainedTokens);
            double loss = 0, kd = 0, ce = 0;
            for (var m = 0; m < batches.Count; m++)
            {
                // The teacher is awaited before the dispose scope opens: scopes are thread-static.
                var seed = config.Seed * 1_000_003L + (step - 1) * accumulation + m;
                using var teacherRows = await teacher.ScoreAsync(batches[m], TrainingFactory.Signal(config.Signal, vocabulary, config.Loss.Temperature, seed), cancellationToken);
                using var scope = torch.NewDisposeScope();
                using var parts = MicroBatchLoss(run, teacherRows, batches[m], lossOptions, vocabulary, stepTokens);
                parts.Total.backward();
                loss += parts.Total.to_type(ScalarType.Float64).item<double>();
                kd += parts.Kd.to_type(ScalarType.Float64).item<double>();
                ce += parts.Ce.to_type(ScalarType.Float64).item<double>();
            }

            var gradNorm = run.ClipAndStep(optimizer);
            foreach (var batch in batches)
                batch.Dispose();

            var e = new TrainEvent(step, totalSteps, loss, kd, ce, optimizer.LearningRate, gradNorm, stepTokens / watch.Elapsed.TotalSeconds, stepTokens,
                run.EvalDue(step, totalSteps) ? await Evaluator.EvaluateAsync(run.Student, run.Eval, teacher, vocabulary, run.PadTokenId, cancellationToken: cancellationToken, denseTeacher: connect is null) : null);
            run.Record(e, history, progress, optimizer);
        }

        // Outputs (a last checkpoint lets a rerun with more steps continue from here)
        if (resumed?.Step != step)
            TrainingCheckpoint.Save(config.OutputDir, step, run.Student, optimizer, history);
        var final = run.Eval.Count > 0 ? await Evaluator.EvaluateAsync(run.Student, run.Eval, teacher, vocabulary, run.PadTokenId, cancellationToken: cancellationToken, denseTeacher: connect is null) : null;
        if (final is not null)
            progress?.Report(history[^1] with { Eval = final, Message = "final evaluation" });
        return run.Finish(step, completed: true, history, final);
    }

    /// <summary>
    /// The distillation loss of one micro-batch: the student's shifted hidden states meet the teacher's rows through the chunked (or plain) loss, normalised by the step's tokens.
    /// </summary>
    internal static LossParts MicroBatchLoss(RecipeRun run, ITeacherRows teacherRows, Batch batch, DistillationLossOptions lossOptions, int vocabulary, long stepTokens)
    {
        var config = run.Config;
        var (hidden, labels) = Shifted(run.Student.Hidden(batch.InputIds, batch.AttentionMask, batch.PositionIds, null, batch.DocumentIds), batch.Labels);
        return config.Loss.Chunked
            ? ChunkedDistillationLoss.Compute(hidden, run.Student.OutputWeight.narrow(0, 0, vocabulary), teacherRows, labels, lossOptions, stepTokens)
            : DistillationLoss.Compute(run.Student.Logits(hidden).narrow(-1, 0, vocabulary), teacherRows.Block(0, teacherRows.Rows), labels, lossOptions, stepTokens);
    }

    /// <summary>Position t predicts token t + 1: hidden states of positions 0..T−2 against labels 1..T−1, flattened.</summary>
    internal static (Tensor Hidden, Tensor Labels) Shifted(Tensor hidden, Tensor labels)
    {
        var length = hidden.shape[1];
        return (hidden.narrow(1, 0, length - 1).reshape(-1, hidden.shape[^1]), labels.narrow(1, 1, length - 1).reshape(-1));
    }

    internal static ITeacherSignal LoadTeachers(TrainConfig config, Func<TeacherConfig, ITeacherSignal>? connect)
    {
        var teachers = config.Teachers.Select(t => connect?.Invoke(t) ?? InProcessTeacher.Load(t.Model, RecipeRun.DType(t.Dtype))).ToList();
        return teachers.Count == 1 ? teachers[0] : new MixtureTeacher(teachers, config.Teachers.Select(t => t.Weight).ToList());
    }
}
