using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Contracts.Teacher.V1;
using Distill.Mesh.Training.Teachers;
using Grpc.Core;

namespace Distill.Mesh.Teacher.Scoring;

/// <summary>
/// The teacher's signal for one sequence, cache first: a hit is returned as stored; a miss is
/// scored by the batching queue, encoded at the requested precision and stored. The Score RPC and
/// precompute jobs go through this one path, so what a job stores is exactly what Score looks up.
/// </summary>
public sealed class CachedScorer(TeacherModel model, ScoringQueue queue, ISignalCache cache)
{
    /// <summary>Temperatures outside these bounds underflow or flatten float32 log-probabilities (1e-300 gave NaN).</summary>
    public const double MinTemperature = 0.01;

    /// <inheritdoc cref="MinTemperature"/>
    public const double MaxTemperature = 100;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _checked = new(StringComparer.Ordinal);

    /// <summary>The signal of one sequence; <c>Note</c> is set once per signal setting whose lookups cannot hit what a precompute stored.</summary>
    public async Task<(EncodedSignal Signal, bool FromCache, string? Note)> ScoreAsync(int[] ids, SignalRequest signal, SignalPrecision precision, CancellationToken cancellationToken)
    {
        var description = model.Require().Describe();
        var key = SignalCacheKey.For(description, ids, signal, precision);
        if (await cache.GetAsync(key, cancellationToken) is { } cached)
            return (cached, true, null);
        var note = await MismatchAsync(description.Fingerprint, SignalCacheKey.Describe(signal, precision), cancellationToken);
        Modeling.Losses.TeacherTarget target;
        try
        {
            target = await queue.ScoreAsync(ids, signal, cancellationToken);
        }
        catch (QueueFullException e)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, e.Message));
        }

        EncodedSignal encoded;
        try
        {
            encoded = SignalCodec.Encode(target, precision, signal.Vocabulary);
        }
        finally
        {
            target.DisposeTensors();
        }

        await cache.SetAsync(key, encoded, cancellationToken);
        return (encoded, false, note);
    }

    /// <summary>
    /// On the first miss of a signal setting: when precomputes stored this teacher's signal only
    /// with other settings, every lookup of this one misses — say so once, naming both.
    /// </summary>
    private async Task<string?> MismatchAsync(string fingerprint, string asked, CancellationToken cancellationToken)
    {
        if (!_checked.TryAdd(asked, true))
            return null;
        var stored = await cache.PrecomputedAsync(fingerprint, cancellationToken);
        return stored.Count == 0 || stored.Contains(asked)
            ? null
            : $"precomputed entries exist for {string.Join(" | ", stored)}; this run asks {asked}, so none of its lookups can hit them (make signal.* match the precompute's)";
    }

    /// <summary>
    /// The signal a Score request's spec asks of <paramref name="description"/>'s teacher (top-k
    /// always with its tail: the client applies its own top-k mode), or InvalidArgument naming the field.
    /// </summary>
    public static (SignalRequest Signal, SignalPrecision Precision) Signal(TeacherDescription description, SignalSpec? spec)
    {
        if (spec is null)
            throw new RpcException(new Status(StatusCode.InvalidArgument, "signal is required"));
        var vocabulary = spec.Vocabulary == 0 ? description.VocabSize : spec.Vocabulary;
        if (vocabulary < 1 || vocabulary > description.VocabSize)
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"signal.vocabulary {spec.Vocabulary} must be in [1, {description.VocabSize}]"));
        if (spec.K < 1 || spec.K > vocabulary)
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"signal.k must be in [1, {vocabulary}] (got {spec.K})"));
        if (!(spec.Temperature is >= MinTemperature and <= MaxTemperature))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"signal.temperature must be in [{MinTemperature}, {MaxTemperature}] (got {spec.Temperature})"));
        var format = spec.Format switch
        {
            Contracts.Teacher.V1.SignalFormat.TopK => Training.Teachers.SignalFormat.TopK,
            Contracts.Teacher.V1.SignalFormat.Sampled => Training.Teachers.SignalFormat.Sampled,
            _ => throw new RpcException(new Status(StatusCode.InvalidArgument, "signal.format must be TOP_K or SAMPLED")),
        };
        SignalPrecision precision;
        try
        {
            precision = SignalMapping.ToPrecision(spec.Precision);
        }
        catch (ArgumentException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }

        return (new SignalRequest(format, vocabulary, spec.Temperature, spec.K, Modeling.Losses.TopKMode.Tail, spec.K, (long)spec.Seed), precision);
    }
}
