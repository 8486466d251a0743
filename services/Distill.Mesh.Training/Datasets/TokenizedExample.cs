namespace Distill.Mesh.Training.Datasets;

/// <summary>
/// A tokenized training sequence. <see cref="Labels"/> align with <see cref="InputIds"/> (the
/// causal shift happens in the loss): the token's id where it is trained on, −100 elsewhere.
/// </summary>
public sealed record TokenizedExample(int[] InputIds, long[] Labels)
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

    /// <summary>The chat layout; null takes it from the tokenizer.</summary>
    public Modeling.Tokenization.ChatFormat? ChatFormat { get; init; }
}
