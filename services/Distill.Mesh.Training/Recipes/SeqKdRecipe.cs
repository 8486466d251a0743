using Distill.Mesh.Specs.Storage;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Specs.Configuration;
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

    /// <summary>Runs the recipe; <paramref name="connect"/>, when given, reaches the teacher some other way than loading it (a teacher service) and must give a teacher that can generate.</summary>
    public static async Task<TrainResult> RunAsync(TrainConfig config, RerunPolicy rerun, IProgress<TrainEvent>? progress, CancellationToken cancellationToken, Func<TeacherConfig, ITeacherSignal?>? connect = null)
    {
        if (config.Teachers.Count != 1)
            throw new ConfigException("the seq_kd recipe needs exactly one teacher");

        // Setup
        using var run = RecipeRun.Start(config, rerun);
        await run.LoadDataAsync(run.Student.Config.VocabSize, cancellationToken);
        var cache = Path.Combine(config.OutputDir, "seq_kd_train.jsonl");
        if (File.Exists(cache))
        {
            run.UseTrainingExamples(File.ReadLines(cache).Select(l => JsonSerializer.Deserialize<TokenizedExample>(l)!).ToList());
        }
        else
        {
            List<TokenizedExample> generated;
            var remote = connect?.Invoke(config.Teachers[0]);
            var loaded = remote is null
                ? InProcessTeacher.Load(config.Teachers[0].Model, RecipeRun.DType(config.Teachers[0].Dtype), Modeling.Models.ComputeDevice.Parse(config.Teachers[0].Device, "teachers.0.device"))
                : null;
            try
            {
                var teacher = loaded ?? remote!;
                if (teacher is not ITeacherGenerator generator)
                    throw new ConfigException("the seq_kd recipe needs a teacher that can generate");
                if (teacher.Describe().TokenizerHash != run.Tokenizer.Hash)
                    throw new IncompatibleTeacherException("sequence-level KD here passes token ids between the models: teacher and student need the same tokenizer");
                generated = [];
                var chunks = run.Train.Chunk(GenerationBatch).ToList();
                for (var i = 0; i < chunks.Count; i++)
                {
                    var prompts = chunks[i].Select(e => (IReadOnlyList<int>)e.InputIds.Take(e.PromptLength).ToArray()).ToList();
                    var options = Completions.Options(config.Generation, prompts, run.PadTokenId, config.Seed + i, config.Dataset.MaxLength);
                    generated.AddRange(Completions.Join(prompts, await generator.GenerateAsync(prompts, options, cancellationToken), config.Dataset.MaxLength));
                }
            }
            finally
            {
                loaded?.Dispose();
            }

            AtomicFile.WriteAllText(cache, string.Concat(generated.Select(e => JsonSerializer.Serialize(e) + "\n")));
            run.UseTrainingExamples(generated);
            progress?.Report(new TrainEvent(0, 0, 0, 0, 0, 0, 0, 0, 0, Message: $"teacher wrote {generated.Count} responses ({generated.Sum(e => e.TrainedTokens)} tokens)"));
        }

        // Train, checkpoint, outputs: plain fine-tuning on the teacher's sequences.
        return await SftRecipe.TrainAsync(run, progress, cancellationToken);
    }
}
