namespace Distill.Mesh.Training.Datasets;

/// <summary>
/// A tokenized training sequence. <see cref="Labels"/> align with <see cref="InputIds"/> (the
/// causal shift happens in the loss): the token's id where it is trained on, −100 elsewhere.
/// A packed sequence also carries <see cref="DocumentIds"/>: which example each token came from.
/// </summary>
public sealed record TokenizedExample(int[] InputIds, long[] Labels, int[]? DocumentIds = null)
{
    public const long IgnoreIndex = -100;

    /// <summary>Tokens before the first trained one (at least one: generation needs a context).</summary>
    public int PromptLength => Math.Max(1, Array.FindIndex(Labels, l => l != IgnoreIndex) is var i and >= 0 ? i : InputIds.Length);

    /// <summary>Tokens that take a loss (after the causal shift, the first token never does).</summary>
    public int TrainedTokens => Labels.Skip(1).Count(l => l != IgnoreIndex);
}

/// <summary>How rows become training sequences.</summary>
public sealed record ExampleOptions
{
    /// <summary>Longer sequences are truncated (from the end).</summary>
    public int MaxLength { get; init; } = 2048;

    /// <summary>Train on every token, prompts included (default: only responses, for chat and instruction data).</summary>
    public bool TrainOnInputs { get; init; }

    /// <summary>A built-in chat layout; null uses the tokenizer's chat template (or, without one, detects a layout).</summary>
    public Modeling.Tokenization.ChatFormat? ChatFormat { get; init; }
}

/// <summary>
/// Packs examples into sequences of at most <c>maxLength</c> tokens, in order, first fit. Attention
/// and positions stay within each example (document ids), and the first token of every example
/// after the first takes no loss: it would be predicted from the previous example.
/// </summary>
public static class Packing
{
    public static List<TokenizedExample> Pack(IEnumerable<TokenizedExample> examples, int maxLength)
    {
        var packed = new List<TokenizedExample>();
        var ids = new List<int>();
        var labels = new List<long>();
        var documents = new List<int>();
        var document = 0;
        foreach (var example in examples)
        {
            if (example.InputIds.Length > maxLength)
                throw new ArgumentException($"an example of {example.InputIds.Length} tokens exceeds max_length {maxLength}; truncate before packing");
            if (ids.Count + example.InputIds.Length > maxLength)
                Flush();
            ids.AddRange(example.InputIds);
            labels.AddRange(example.Labels);
            if (document > 0)
                labels[^example.Labels.Length] = TokenizedExample.IgnoreIndex;
            documents.AddRange(Enumerable.Repeat(document++, example.InputIds.Length));
        }

        Flush();
        return packed;

        void Flush()
        {
            if (ids.Count == 0)
                return;
            packed.Add(new TokenizedExample(ids.ToArray(), labels.ToArray(), documents.ToArray()));
            (ids, labels, documents, document) = ([], [], [], 0);
        }
    }
}
