using static TorchSharp.torch;

namespace Distill.Mesh.Training.Datasets;

/// <summary>
/// A padded batch: ids [B, T], labels [B, T] (−100 at padding), attention mask [B, T]; for packed
/// sequences also document ids and per-document position ids [B, T].
/// </summary>
public sealed record Batch(Tensor InputIds, Tensor Labels, Tensor AttentionMask, Tensor? PositionIds = null, Tensor? DocumentIds = null) : IDisposable
{
    /// <summary>Tokens that take a loss after the causal shift.</summary>
    public long TrainedTokens => Labels.narrow(1, 1, Labels.shape[1] - 1).ne(TokenizedExample.IgnoreIndex).sum().item<long>();

    public void Dispose()
    {
        InputIds.Dispose();
        Labels.Dispose();
        AttentionMask.Dispose();
        PositionIds?.Dispose();
        DocumentIds?.Dispose();
    }
}

/// <summary>Shuffling, splitting and right-padded batching of tokenized examples.</summary>
public static class Batching
{
    /// <summary>A deterministic permutation of <paramref name="items"/> from <paramref name="seed"/>.</summary>
    public static List<T> Shuffle<T>(IReadOnlyList<T> items, int seed)
    {
        var result = items.ToList();
        var random = new Random(seed);
        for (var i = result.Count - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (result[i], result[j]) = (result[j], result[i]);
        }

        return result;
    }

    /// <summary>Shuffles by seed, then takes the last <paramref name="evalFraction"/> (at least one row when &gt; 0) for evaluation.</summary>
    public static (List<T> Train, List<T> Eval) Split<T>(IReadOnlyList<T> items, double evalFraction, int seed)
    {
        if (evalFraction is < 0 or >= 1)
            throw new ArgumentException($"eval fraction must be in [0, 1) (got {evalFraction})");
        var shuffled = Shuffle(items, seed);
        var evalCount = evalFraction == 0 ? 0 : Math.Max(1, (int)Math.Round(items.Count * evalFraction));
        if (evalCount >= items.Count)
            throw new ArgumentException($"{items.Count} rows are too few to hold out {evalFraction:P0} for evaluation");
        return (shuffled.Take(items.Count - evalCount).ToList(), shuffled.Skip(items.Count - evalCount).ToList());
    }

    /// <summary>Pads examples on the right to the longest one.</summary>
    public static Batch Collate(IReadOnlyList<TokenizedExample> examples, int padTokenId, Device? device = null)
    {
        var width = examples.Max(e => e.InputIds.Length);
        var packed = examples.Any(e => e.DocumentIds is not null);
        var ids = new long[examples.Count, width];
        var labels = new long[examples.Count, width];
        var mask = new long[examples.Count, width];
        var documents = new long[examples.Count, width];
        var positions = new long[examples.Count, width];
        for (var b = 0; b < examples.Count; b++)
        {
            var start = 0;
            for (var t = 0; t < width; t++)
            {
                var real = t < examples[b].InputIds.Length;
                ids[b, t] = real ? examples[b].InputIds[t] : padTokenId;
                labels[b, t] = real ? examples[b].Labels[t] : TokenizedExample.IgnoreIndex;
                mask[b, t] = real ? 1 : 0;
                // Padding is a document of its own (−1), so packed rows never attend to it.
                var document = real ? examples[b].DocumentIds?[t] ?? 0 : -1;
                if (t > 0 && document != documents[b, t - 1])
                    start = t;
                documents[b, t] = document;
                positions[b, t] = real ? t - start : 0;
            }
        }

        return packed
            ? new Batch(tensor(ids, device: device), tensor(labels, device: device), tensor(mask, device: device), tensor(positions, device: device), tensor(documents, device: device))
            : new Batch(tensor(ids, device: device), tensor(labels, device: device), tensor(mask, device: device));
    }
}
