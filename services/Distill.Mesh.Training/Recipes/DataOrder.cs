using Distill.Mesh.Training.Datasets;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// Which examples form micro-batch number i: epoch e = i / batches-per-epoch is shuffled with seed + e.
/// A pure function of i, so a resumed run continues exactly where the data order was.
/// </summary>
public sealed class DataOrder(IReadOnlyList<TokenizedExample> examples, int batchSize, int seed)
{
    private readonly Dictionary<long, List<TokenizedExample>> _epochs = [];

    public long BatchesPerEpoch { get; } = Math.Max(1, examples.Count / batchSize);

    public IReadOnlyList<TokenizedExample> MicroBatch(long index)
    {
        var epoch = index / BatchesPerEpoch;
        if (!_epochs.TryGetValue(epoch, out var order))
        {
            _epochs.Clear();
            order = Batching.Shuffle(examples, unchecked(seed + (int)epoch));
            _epochs[epoch] = order;
        }

        return order.Skip((int)(index % BatchesPerEpoch * batchSize)).Take(batchSize).ToList();
    }
}
