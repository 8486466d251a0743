using System.Text.Json.Nodes;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// Online logit distillation: the teacher scores each micro-batch in process; the student learns
/// (1 − kd_ratio)·CE + kd_ratio·KD, normalised over the trained tokens of the whole optimizer step.
/// One teacher, or a weighted mixture of several. The loop is <see cref="TrainingLoop"/>.
/// </summary>
public static class KdRecipe
{
    /// <param name="config">The run.</param>
    /// <param name="rerun">What to do when the output folder already holds a run.</param>
    /// <param name="progress">Receives step events.</param>
    /// <param name="cancellationToken">Stops the run at the next step boundary, with a checkpoint.</param>
    /// <param name="connect">Reaches a teacher some other way than loading it here (the trainer service: over gRPC).</param>
    public static async Task<TrainResult> RunAsync(TrainConfig config, RerunPolicy rerun, IProgress<TrainEvent>? progress, CancellationToken cancellationToken, Func<TeacherConfig, ITeacherSignal?>? connect = null)
    {
        if (config.Teachers.Count == 0)
            throw new ConfigException("the kd recipe needs at least one entry under 'teachers'");

        // Setup
        using var run = RecipeRun.Start(config, rerun);
        using var teacher = LoadTeachers(config, connect);
        var vocabulary = TeacherCompatibility.Check(teacher.Describe(), run.Tokenizer, run.Student.Config.VocabSize);
        await run.LoadDataAsync(vocabulary, cancellationToken, progress);

        // Train, checkpoint, outputs
        return await TrainingLoop.RunAsync(run, teacher, vocabulary, denseTeacher: connect is null, stepBatches: null, progress, cancellationToken);
    }

    /// <summary>The run's teachers as one signal: each loaded here or reached through <paramref name="connect"/>; several make a weighted mixture.</summary>
    public static ITeacherSignal LoadTeachers(TrainConfig config, Func<TeacherConfig, ITeacherSignal?>? connect)
    {
        var teachers = config.Teachers.Select((t, i) => connect?.Invoke(t)
            ?? InProcessTeacher.Load(t.Model, RecipeRun.DType(t.Dtype), Modeling.Models.ComputeDevice.Parse(t.Device, $"teachers.{i}.device"))).ToList();
        return teachers.Count == 1 ? teachers[0] : new MixtureTeacher(teachers, config.Teachers.Select(t => t.Weight).ToList());
    }
}
