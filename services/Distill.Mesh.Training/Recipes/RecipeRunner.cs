using System.Text.Json.Nodes;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Training.Recipes;

/// <summary>Runs the recipe a config names.</summary>
public static class RecipeRunner
{
    public static readonly string[] Names = ["kd", "seq_kd", "gkd", "sft"];

    /// <param name="config">The run.</param>
    /// <param name="rerun">What to do when the output folder already holds a run.</param>
    /// <param name="progress">Step events.</param>
    /// <param name="cancellationToken">Stops the run at a step boundary, with a checkpoint.</param>
    /// <param name="connect">Reaches teachers some other way than loading them (kd, gkd; seq_kd when the teacher can generate).</param>
    public static async Task<TrainResult> RunAsync(TrainConfig config, RerunPolicy rerun, IProgress<TrainEvent>? progress, CancellationToken cancellationToken, Func<TeacherConfig, ITeacherSignal?>? connect = null)
    {
        var fresh = rerun == RerunPolicy.Restart || !RunProvenance.Exists(config.OutputDir);
        try
        {
            return await (config.Recipe.ToLowerInvariant() switch
            {
                "kd" => KdRecipe.RunAsync(config, rerun, progress, cancellationToken, connect),
                "gkd" => GkdRecipe.RunAsync(config, rerun, progress, cancellationToken, connect),
                "seq_kd" => SeqKdRecipe.RunAsync(config, rerun, progress, cancellationToken, connect),
                "sft" => SftRecipe.RunAsync(config, rerun, progress, cancellationToken),
                _ => throw new ConfigException($"recipe '{config.Recipe}' is not one of {string.Join(", ", Names)}"),
            });
        }
        catch (Exception) when (fresh && !cancellationToken.IsCancellationRequested)
        {
            // A run that failed before training anything (a teacher that does not fit, a bad dataset) leaves no folder behind.
            RunProvenance.DiscardIfUntrained(config.OutputDir);
            throw;
        }
    }
}
