using System.Text.Json.Nodes;
using Distill.Mesh.Specs.Configuration;

namespace Distill.Mesh.Training.Recipes;

/// <summary>Plain supervised fine-tuning on hard labels: the baseline distillation must beat.</summary>
public static class SftRecipe
{
    public static async Task<TrainResult> RunAsync(TrainConfig config, RerunPolicy rerun, IProgress<TrainEvent>? progress, CancellationToken cancellationToken)
    {
        // Setup
        using var run = RecipeRun.Start(config, rerun);
        await run.LoadDataAsync(run.Student.Config.VocabSize, cancellationToken, progress);
        return await TrainAsync(run, progress, cancellationToken);
    }

    /// <summary>The fine-tuning loop over <see cref="RecipeRun.Train"/> (also sequence-level KD's, on the teacher's completions).</summary>
    internal static Task<TrainResult> TrainAsync(RecipeRun run, IProgress<TrainEvent>? progress, CancellationToken cancellationToken) =>
        TrainingLoop.RunAsync(run, teacher: null, run.Student.Config.VocabSize, denseTeacher: true, stepBatches: null, progress, cancellationToken);
}
