using Distill.Mesh.Modeling.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Generation;

/// <summary>
/// Autoregressive generation with a KV cache. Prompts of different lengths run as one batch,
/// left-padded, with positions counted from each prompt's first real token.
/// </summary>
public static class TextGenerator
{
    /// <summary>
    /// Generates continuations of <paramref name="prompts"/> (token ids), one per prompt.
    /// <paramref name="onToken"/> (prompt index, token) hears each token as soon as it is chosen;
    /// cancellation is checked before every step.
    /// </summary>
    public static IReadOnlyList<GeneratedSequence> Generate(
        CausalLanguageModel model, IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options,
        Action<int, int>? onToken = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        if (prompts.Count == 0)
            return [];
        var vocab = model.Config.VocabSize;
        foreach (var prompt in prompts)
        {
            if (prompt.Count == 0)
                throw new ArgumentException("every prompt needs at least one token");
            if (prompt.Any(id => id < 0 || id >= vocab))
                throw new ArgumentException($"prompt token id out of range [0, {vocab})");
        }

        using var noGrad = torch.no_grad();
        using var sampler = new TokenSampler(options);
        using var cache = model.NewCache();
        var batch = prompts.Count;
        var width = prompts.Max(p => p.Count);
        var ids = new long[batch, width];
        var mask = new long[batch, width];
        for (var b = 0; b < batch; b++)
        {
            var offset = width - prompts[b].Count;
            for (var t = 0; t < width; t++)
            {
                ids[b, t] = t < offset ? options.PadTokenId : prompts[b][t - offset];
                mask[b, t] = t < offset ? 0 : 1;
            }
        }

        var outputs = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
        var finished = new bool[batch];
        var paddingMask = torch.tensor(mask, device: model.Device);
        var input = torch.tensor(ids, device: model.Device);
        try
        {
            for (var step = 0; step < options.MaxNewTokens && !finished.All(f => f); step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                long[] next;
                using (var scope = torch.NewDisposeScope())
                {
                    var logits = model.Forward(input, paddingMask, cache: cache);
                    next = sampler.Next(logits.select(1, -1));
                }

                for (var b = 0; b < batch; b++)
                {
                    if (finished[b])
                    {
                        next[b] = options.PadTokenId;
                        continue;
                    }

                    outputs[b].Add((int)next[b]);
                    finished[b] = options.StopTokenIds.Contains((int)next[b]);
                    onToken?.Invoke(b, (int)next[b]);
                }

                input.Dispose();
                input = torch.tensor(next, device: model.Device).unsqueeze(1);
                var grown = torch.cat([paddingMask, torch.ones(batch, 1, dtype: ScalarType.Int64, device: model.Device)], 1);
                paddingMask.Dispose();
                paddingMask = grown;
            }
        }
        finally
        {
            input.Dispose();
            paddingMask.Dispose();
        }

        return outputs.Select((tokens, b) => new GeneratedSequence(tokens, finished[b] ? StopReason.StopToken : StopReason.MaxNewTokens)).ToList();
    }
}
