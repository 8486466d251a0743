using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Training.Configuration;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// Sequence-level KD: the teacher writes the responses to the dataset's prompts, and the student is
/// fine-tuned on them. The teacher's completions are generated once, seeded, and saved with the run
/// (<c>seq_kd_train.jsonl</c>), so a resumed run trains on the same sequences.
/// </summary>
public static class SeqKdRecipe
{
    private const int GenerationBatch = 16;

    public static async Task<TrainResult> RunAsync(TrainConfig config, JsonObject? resolved, IProgress<TrainEvent>? progress, CancellationToken cancellationToken)
    {
        if (config.Teachers.Count != 1)
            throw new ConfigException("the seq_kd recipe needs exactly one teacher");

        // Setup
        using var run = RecipeRun.Start(config, resolved);
        await run.LoadDataAsync(run.Student.Config.VocabSize, cancellationToken);
        var cache = Path.Combine(config.OutputDir, "seq_kd_train.jsonl");
        if (File.Exists(cache))
        {
            run.UseTrainingExamples(File.ReadLines(cache).Select(l => JsonSerializer.Deserialize<TokenizedExample>(l)!).ToList());
        }
        else
        {
            using var teacher = InProcessTeacher.Load(config.Teachers[0].Model, RecipeRun.DType(config.Teachers[0].Dtype));
            if (teacher.Describe().TokenizerHash != run.Tokenizer.Hash)
                throw new IncompatibleTeacherException("sequence-level KD here passes token ids between the models: teacher and student need the same tokenizer");
            var stop = GenerationConfig.Load(config.Teachers[0].Model).StopTokens(teacher.Model.Config);
            var generated = run.Train.Chunk(GenerationBatch).SelectMany((chunk, i) =>
                Completions.Generate(teacher.Model, chunk, config.Generation, stop, run.PadTokenId, config.Seed + i, config.Dataset.MaxLength)).ToList();
            AtomicFile.WriteAllText(cache, string.Concat(generated.Select(e => JsonSerializer.Serialize(e) + "\n")));
            run.UseTrainingExamples(generated);
            progress?.Report(new TrainEvent(0, 0, 0, 0, 0, 0, 0, 0, 0, Message: $"teacher wrote {generated.Count} responses ({generated.Sum(e => e.TrainedTokens)} tokens)"));
        }

        // Train, checkpoint, outputs: plain fine-tuning on the teacher's sequences.
        return await SftRecipe.TrainAsync(run, progress, cancellationToken);
    }
}
