using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Training.Recipes;

/// <summary>Precompute's count: micro-batches and sequences scored by this shard.</summary>
public sealed record PrecomputeResult(long MicroBatches, long Sequences);

/// <summary>
/// Scores, ahead of training, every micro-batch the train stage of a kd run will ask its teacher
/// for: the same examples in the same order, with the same signal request and seed, so that a
/// teacher with a cache (a teacher service, Redis) answers the whole run from it. Work is split into
/// shards by micro-batch (shard i takes micro-batches i, i + N, …); a rerun of a finished shard only
/// reads the cache.
/// </summary>
public static class SignalPrecompute
{
    /// <param name="config">The run (recipe kd).</param>
    /// <param name="teacher">The teacher whose cache fills.</param>
    /// <param name="shard">This shard's index in [0, <paramref name="shards"/>).</param>
    /// <param name="shards">How many shards the work is split into.</param>
    /// <param name="progress">(micro-batches done, micro-batches of this shard).</param>
    /// <param name="cancellationToken">Stops between micro-batches.</param>
    public static Task<PrecomputeResult> RunAsync(TrainConfig config, ITeacherSignal teacher, int shard, int shards, IProgress<(long Done, long Total)>? progress, CancellationToken cancellationToken) =>
        RunAsync(config, teacher.Describe(), async (batch, request, token) =>
        {
            using (await teacher.ScoreAsync(batch, request, token))
            {
            }
        }, shard, shards, progress, cancellationToken);

    /// <summary>The same micro-batches handed to <paramref name="score"/> (a teacher service's own cache-first scorer, in its precompute job).</summary>
    /// <param name="config">The run (recipe kd).</param>
    /// <param name="teacher">The teacher the micro-batches are scored by.</param>
    /// <param name="score">Scores (and caches) one micro-batch with one signal request.</param>
    /// <param name="shard">This shard's index in [0, <paramref name="shards"/>).</param>
    /// <param name="shards">How many shards the work is split into.</param>
    /// <param name="progress">(micro-batches done, micro-batches of this shard).</param>
    /// <param name="cancellationToken">Stops between micro-batches.</param>
    public static async Task<PrecomputeResult> RunAsync(TrainConfig config, TeacherDescription teacher, Func<Batch, SignalRequest, CancellationToken, Task> score,
        int shard, int shards, IProgress<(long Done, long Total)>? progress, CancellationToken cancellationToken)
    {
        if (config.Recipe != "kd")
            throw new ConfigException($"precompute scores the fixed micro-batches of a kd run; recipe {config.Recipe} asks its teacher about sequences generated during training");
        if (shards < 1 || shard < 0 || shard >= shards)
            throw new ArgumentException($"shard {shard} of {shards}: the index must be in [0, {shards})");
        var tokenizer = TokenizerLoader.Load(config.Student.Model);
        var studentVocabulary = ModelConfigs.Load(Path.Combine(config.Student.Model, "config.json")).VocabSize;
        var vocabulary = TeacherCompatibility.Check(teacher, tokenizer, studentVocabulary);
        var (order, _) = await RecipeRun.OpenDataAsync(config, tokenizer, vocabulary, cancellationToken);
        var microBatches = RecipeRun.TotalSteps(config, order) * Math.Max(1, config.Training.GradientAccumulation);
        var mine = microBatches / shards + (shard < microBatches % shards ? 1 : 0);
        long done = 0, sequences = 0;
        for (var index = (long)shard; index < microBatches; index += shards)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var examples = order.MicroBatch(index);
            using (var batch = Batching.Collate(examples, RecipeRun.PaddingId(tokenizer)))
                await score(batch, TrainingFactory.Signal(config.Signal, vocabulary, config.Loss.Temperature, TrainingLoop.SignalSeed(config, index)), cancellationToken);

            sequences += examples.Count;
            done++;
            progress?.Report((done, mine));
        }

        return new PrecomputeResult(done, sequences);
    }
}
