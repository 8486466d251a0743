using System.Text.Json.Nodes;
using Distill.Mesh.Training.Datasets;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// Which examples form micro-batch number i, and what a checkpoint must keep to continue the order
/// exactly where it was.
/// </summary>
public interface IDataOrder
{
    /// <summary>Micro-batches in one pass over the data; null for a stream (its length is not known ahead).</summary>
    long? BatchesPerEpoch { get; }

    /// <summary>The examples of micro-batch <paramref name="index"/> (0-based).</summary>
    IReadOnlyList<TokenizedExample> MicroBatch(long index);

    /// <summary>What a checkpoint taken before micro-batch <paramref name="index"/> stores; null when the order is a pure function of the index.</summary>
    JsonObject? StateAt(long index);

    /// <summary>Continues before micro-batch <paramref name="index"/> from a stored <see cref="StateAt"/> (null: the checkpoint stored none).</summary>
    void Restore(JsonObject? state, long index);
}

/// <summary>
/// Examples held in memory: epoch e = i / batches-per-epoch is shuffled with seed + e. A pure
/// function of i, so a resumed run continues exactly where the data order was.
/// </summary>
public sealed class DataOrder(IReadOnlyList<TokenizedExample> examples, int batchSize, int seed) : IDataOrder
{
    private readonly Dictionary<long, List<TokenizedExample>> _epochs = [];

    public long? BatchesPerEpoch { get; } = Math.Max(1, examples.Count / batchSize);

    public IReadOnlyList<TokenizedExample> MicroBatch(long index)
    {
        var perEpoch = BatchesPerEpoch!.Value;
        var epoch = index / perEpoch;
        if (!_epochs.TryGetValue(epoch, out var order))
        {
            _epochs.Clear();
            order = Batching.Shuffle(examples, unchecked(seed + (int)epoch));
            _epochs[epoch] = order;
        }

        return order.Skip((int)(index % perEpoch * batchSize)).Take(batchSize).ToList();
    }

    public JsonObject? StateAt(long index) => null;

    public void Restore(JsonObject? state, long index)
    {
        if (state is not null)
            throw new DatasetFormatException("the checkpoint was written reading the dataset as a stream, and this config reads it whole; start the run in a new output_dir");
    }
}

/// <summary>
/// Micro-batches read forward from a <see cref="DatasetStream"/>: batch_size examples each. The state
/// after each of the last micro-batches is kept, so a checkpoint of any recent step (the one a
/// diverged step falls back to included) stores where the stream stood.
/// </summary>
public sealed class StreamedDataOrder(DatasetStream stream, int batchSize) : IDataOrder
{
    private const int KeptStates = 256;

    private readonly SortedDictionary<long, JsonObject> _states = new() { [0] = stream.Initial };
    private long _next;

    public long? BatchesPerEpoch => null;

    public IReadOnlyList<TokenizedExample> MicroBatch(long index)
    {
        if (index < _next)
            throw new InvalidOperationException($"a streamed dataset is read forward: micro-batch {index} was already read (next is {_next})");
        List<TokenizedExample> batch = [];
        // Precompute's shards skip the micro-batches other shards score.
        for (; _next <= index; _next++)
        {
            batch = Enumerable.Range(0, batchSize).Select(_ => stream.Next()).ToList();
            _states[_next + 1] = stream.SaveState();
            while (_states.Count > KeptStates)
                _states.Remove(_states.Keys.First());
        }

        return batch;
    }

    public JsonObject? StateAt(long index) => _states.TryGetValue(index, out var state)
        ? state
        : throw new InvalidOperationException($"no data position kept for micro-batch {index} (kept: {_states.Keys.First()} to {_states.Keys.Last()})");

    public void Restore(JsonObject? state, long index)
    {
        if (index == 0 && state is null)
            return;
        stream.Restore(state ?? throw new DatasetFormatException(
            "the checkpoint was written reading the dataset whole and stores no position in a stream; start the run in a new output_dir"));
        _states.Clear();
        _states[index] = state;
        _next = index;
    }
}
