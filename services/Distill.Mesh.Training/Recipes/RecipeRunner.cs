using System.Text.Json.Nodes;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Training.Recipes;

/// <summary>Runs the recipe a config names.</summary>
public static class RecipeRunner
{
    public static readonly string[] Names = ["kd", "seq_kd", "gkd", "sft"];

    /// <param name="config">The run.</param>
    /// <param name="resolved">The resolved config to keep with the outputs.</param>
    /// <param name="progress">Step events.</param>
    /// <param name="cancellationToken">Stops the run at a step boundary, with a checkpoint.</param>
    /// <param name="connect">Reaches teachers some other way than loading them (kd, gkd; seq_kd when the teacher can generate).</param>
    public static Task<TrainResult> RunAsync(TrainConfig config, JsonObject? resolved, IProgress<TrainEvent>? progress, CancellationToken cancellationToken, Func<TeacherConfig, ITeacherSignal>? connect = null) =>
        config.Recipe.ToLowerInvariant() switch
        {
            "kd" => KdRecipe.RunAsync(config, resolved, progress, cancellationToken, connect),
            "gkd" => GkdRecipe.RunAsync(config, resolved, progress, cancellationToken, connect),
            "seq_kd" => SeqKdRecipe.RunAsync(config, resolved, progress, cancellationToken, connect),
            "sft" => SftRecipe.RunAsync(config, resolved, progress, cancellationToken),
            _ => throw new ConfigException($"recipe '{config.Recipe}' is not one of {string.Join(", ", Names)}"),
        };
}
