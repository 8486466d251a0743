using Distill.Mesh.Specs.Storage;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Distill.Mesh.Modeling.Tokenization;
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
        await run.LoadDataAsync(run.Student.Config.VocabSize, cancellationToken, progress);
        var cache = Path.Combine(config.OutputDir, "seq_kd_train.jsonl");
        if (File.Exists(cache))
        {
            run.UseTrainingExamples(File.ReadLines(cache).Select((l, i) => SeqKdSample.Read(l, cache, i + 1)).ToList());
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

            AtomicFile.WriteAllText(cache, string.Concat(generated.Select(e => SeqKdSample.Write(e, run.Tokenizer) + "\n")));
            run.UseTrainingExamples(generated);
            progress?.Report(TrainEvent.Note($"teacher wrote {generated.Count} responses ({generated.Sum(e => e.TrainedTokens)} tokens)"));
        }

        // Train, checkpoint, outputs: plain fine-tuning on the teacher's sequences.
        return await SftRecipe.TrainAsync(run, progress, cancellationToken);
    }
}

/// <summary>
/// One line of <c>seq_kd_train.jsonl</c>: the prompt and the teacher's response as text (for people
/// reading the file) beside the ids and labels the run trains on (what a resumed run reads back).
/// </summary>
public sealed record SeqKdSample(
    [property: JsonPropertyName("prompt")] string Prompt,
    [property: JsonPropertyName("response")] string Response,
    [property: JsonPropertyName("input_ids")] int[] InputIds,
    [property: JsonPropertyName("labels")] long[] Labels)
{
    public static string Write(TokenizedExample example, TextTokenizer tokenizer)
    {
        var prompt = example.PromptLength;
        return JsonSerializer.Serialize(new SeqKdSample(tokenizer.Decode(example.InputIds.Take(prompt)), tokenizer.Decode(example.InputIds.Skip(prompt)), example.InputIds, example.Labels));
    }

    /// <summary>A line back as a training example (the text is not read); files of older runs held the example's own fields.</summary>
    public static TokenizedExample Read(string line, string path, int number)
    {
        try
        {
            if (line.Contains("\"InputIds\"", StringComparison.Ordinal))
                return JsonSerializer.Deserialize<TokenizedExample>(line) ?? throw new JsonException("null");
            var sample = JsonSerializer.Deserialize<SeqKdSample>(line) ?? throw new JsonException("null");
            if (sample.InputIds is null || sample.Labels is null || sample.InputIds.Length != sample.Labels.Length)
                throw new JsonException("input_ids and labels must be arrays of one length");
            return new TokenizedExample(sample.InputIds, sample.Labels);
        }
        catch (JsonException e)
        {
            throw new DatasetFormatException($"{path}:{number}: not a seq_kd sample ({e.Message}); delete the file to have the teacher generate again");
        }
    }
}
