using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Teachers;
using TorchSharp;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// On-policy distillation (GKD): with probability <c>gkd.lmbda</c> a micro-batch's responses are
/// replaced by the student's own completions of its prompts, then the teacher scores the sequences
/// and the student learns the loss (usually <c>jsd</c>, with <c>beta</c>) on the response tokens.
/// With lmbda = 0 this is exactly the kd recipe.
/// </summary>
public static class GkdRecipe
{
    public static async Task<TrainResult> RunAsync(TrainConfig config, RerunPolicy rerun, IProgress<TrainEvent>? progress, CancellationToken cancellationToken, Func<TeacherConfig, ITeacherSignal?>? connect = null)
    {
        if (config.Teachers.Count == 0)
            throw new ConfigException("the gkd recipe needs a teacher");
        if (config.Gkd.Lmbda is < 0 or > 1)
            throw new ConfigException($"gkd.lmbda must be in [0, 1] (got {config.Gkd.Lmbda})");

        // Setup
        using var run = RecipeRun.Start(config, rerun);
        using var teacher = KdRecipe.LoadTeachers(config, connect);
        var vocabulary = TeacherCompatibility.Check(teacher.Describe(), run.Tokenizer, run.Student.Config.VocabSize);
        await run.LoadDataAsync(vocabulary, cancellationToken, progress);
        var stop = GenerationConfig.Load(config.Student.Model).StopTokens(run.Student.Config);
        var accumulation = Math.Max(1, config.Training.GradientAccumulation);

        (List<Batch>, string?) StepBatches(IDataOrder order, long step)
        {
            var batches = new List<Batch>();
            var onPolicy = 0;
            for (var m = 0; m < accumulation; m++)
            {
                var index = (step - 1) * accumulation + m;
                var examples = order.MicroBatch(index);
                // The coin for each micro-batch depends only on (seed, index): a resumed run flips the same coins.
                if (new Random(HashCode.Combine(config.Seed, index)).NextDouble() < config.Gkd.Lmbda)
                {
                    using var noGrad = torch.no_grad();
                    examples = Completions.Generate(run.Student, examples, config.Generation, stop, run.PadTokenId, config.Seed * 7919L + index, config.Dataset.MaxLength);
                    onPolicy++;
                }

                batches.Add(Batching.Collate(examples, run.PadTokenId, run.Student.Device));
            }

            return (batches, onPolicy > 0 ? $"{onPolicy}/{accumulation} micro-batches on-policy" : null);
        }

        // Train, checkpoint, outputs
        return await TrainingLoop.RunAsync(run, teacher, vocabulary, denseTeacher: connect is null, StepBatches, progress, cancellationToken);
    }
}
