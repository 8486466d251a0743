using System.Diagnostics;
using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Training.Configuration;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Recipes;

/// <summary>Plain supervised fine-tuning on hard labels: the baseline distillation must beat.</summary>
public static class SftRecipe
{
    public static async Task<TrainResult> RunAsync(TrainConfig config, JsonObject? resolved, IProgress<TrainEvent>? progress, CancellationToken cancellationToken)
    {
        // Setup
        using var run = RecipeRun.Start(config, resolved);
        await run.LoadDataAsync(run.Student.Config.VocabSize, cancellationToken);
        return await TrainAsync(run, progress, cancellationToken);
    }

    /// <summary>The fine-tuning loop over <see cref="RecipeRun.Train"/> (also sequence-level KD's, on the teacher's completions).</summary>
    internal static async Task<TrainResult> TrainAsync(RecipeRun run, IProgress<TrainEvent>? progress, CancellationToken cancellationToken)
    {
        var config = run.Config;
        var lossOptions = TrainingFactory.Loss(config.Loss);
        var order = new DataOrder(run.Train, config.Training.BatchSize, config.Seed);
        var totalSteps = run.TotalSteps(order);
        using var optimizer = TrainingFactory.Optimizer(config.Training.Optimizer, run.Student.named_parameters().Select(p => (p.name, p.parameter)));
        var schedule = TrainingFactory.Schedule(config.Training.Scheduler, config.Training.Optimizer.Lr, totalSteps);
        var resumed = TrainingCheckpoint.TryResume(config.OutputDir, run.Student, optimizer);
        var history = resumed?.History ?? [];
        var step = resumed?.Step ?? 0;

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
            double loss = 0;
            foreach (var batch in batches)
            {
                using var scope = torch.NewDisposeScope();
                var (hidden, labels) = KdRecipe.Shifted(run.Student.Hidden(batch.InputIds, batch.AttentionMask, batch.PositionIds, null, batch.DocumentIds), batch.Labels);
                using var parts = config.Loss.Chunked
                    ? ChunkedDistillationLoss.Compute(hidden, run.Student.OutputWeight, null, labels, lossOptions, stepTokens)
                    : DistillationLoss.Compute(run.Student.Logits(hidden), null, labels, lossOptions, stepTokens);
                parts.Total.backward();
                loss += parts.Total.to_type(ScalarType.Float64).item<double>();
            }

            var gradNorm = run.ClipAndStep(optimizer);
            foreach (var batch in batches)
                batch.Dispose();

            var e = new TrainEvent(step, totalSteps, loss, 0, loss, optimizer.LearningRate, gradNorm, stepTokens / watch.Elapsed.TotalSeconds, stepTokens,
                run.EvalDue(step, totalSteps) ? await Evaluator.EvaluateAsync(run.Student, run.Eval, null, run.Student.Config.VocabSize, run.PadTokenId, cancellationToken: cancellationToken) : null);
            run.Record(e, history, progress, optimizer);
        }

        // Outputs (a last checkpoint lets a rerun with more steps continue from here)
        if (resumed?.Step != step)
            TrainingCheckpoint.Save(config.OutputDir, step, run.Student, optimizer, history);
        var final = run.Eval.Count > 0 ? await Evaluator.EvaluateAsync(run.Student, run.Eval, null, run.Student.Config.VocabSize, run.PadTokenId, cancellationToken: CancellationToken.None) : null;
        return run.Finish(step, completed: true, history, final);
    }
}
