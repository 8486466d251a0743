using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Generation;

/// <summary>Turns next-token logits into token ids: greedy, or sampled with temperature, top-k and top-p.</summary>
public sealed class TokenSampler : IDisposable
{
    private readonly GenerationOptions _options;
    private readonly Generator _generator;

    public TokenSampler(GenerationOptions options)
    {
        options.Validate();
        _options = options;
        _generator = new Generator((ulong)options.Seed);
    }

    /// <summary>One token per row of <paramref name="logits"/> [B, vocab].</summary>
    public long[] Next(Tensor logits)
    {
        using var scope = torch.NewDisposeScope();
        var scores = logits.detach().to_type(ScalarType.Float32).cpu();
        if (_options.Greedy)
            return scores.argmax(-1).data<long>().ToArray();

        scores = Filter(scores / _options.Temperature, _options.TopK, _options.TopP);
        var probabilities = scores.softmax(-1);
        return torch.multinomial(probabilities, 1, generator: _generator).squeeze(-1).data<long>().ToArray();
    }

    /// <summary>Sets the scores of tokens outside the top-k and the top-p nucleus to −∞.</summary>
    public static Tensor Filter(Tensor scores, int topK, double topP)
    {
        using var scope = torch.NewDisposeScope();
        var vocab = scores.shape[^1];
        if (topK > 0 && topK < vocab)
        {
            var kth = scores.topk(topK, dim: -1).values.narrow(-1, topK - 1, 1);
            scores = scores.masked_fill(scores.lt(kth), double.NegativeInfinity);
        }

        if (topP < 1)
        {
            var (sorted, order) = scores.sort(-1, descending: true);
            var cumulative = sorted.softmax(-1).cumsum(-1);
            // Drop a token when the tokens ranked above it already reach top_p; the first always stays.
            var dropSorted = (cumulative - sorted.softmax(-1)).ge(topP);
            var drop = torch.zeros_like(dropSorted).scatter(-1, order, dropSorted);
            scores = scores.masked_fill(drop, double.NegativeInfinity);
        }

        return scores.MoveToOuterDisposeScope();
    }

    public void Dispose() => _generator.Dispose();
}
