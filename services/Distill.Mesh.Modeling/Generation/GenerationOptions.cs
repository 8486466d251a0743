namespace Distill.Mesh.Modeling.Generation;

/// <summary>How to pick the next token and when to stop.</summary>
public sealed record GenerationOptions
{
    /// <summary>Tokens to generate at most per sequence.</summary>
    public int MaxNewTokens { get; init; } = 64;

    /// <summary>Pick the most likely token (ignores temperature, top-k and top-p).</summary>
    public bool Greedy { get; init; }

    /// <summary>Softmax temperature for sampling; must be positive.</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Sample only among the k most likely tokens; 0 disables.</summary>
    public int TopK { get; init; }

    /// <summary>Sample only from the smallest set of tokens whose probability reaches p; 1 disables.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>Seed of the sampling generator, for reproducible samples.</summary>
    public long Seed { get; init; }

    /// <summary>Tokens that end a sequence (kept as its last token).</summary>
    public IReadOnlySet<int> StopTokenIds { get; init; } = new HashSet<int>();

    /// <summary>Id used for left padding in batches (never attended to).</summary>
    public int PadTokenId { get; init; }

    /// <summary>Throws naming the first invalid field.</summary>
    public void Validate()
    {
        if (MaxNewTokens < 0)
            throw new ArgumentException($"max_new_tokens must be ≥ 0 (got {MaxNewTokens})");
        if (!Greedy && !(Temperature > 0))
            throw new ArgumentException($"temperature must be > 0 (got {Temperature}); use greedy decoding for temperature 0");
        if (TopK < 0)
            throw new ArgumentException($"top_k must be ≥ 0 (got {TopK})");
        if (!(TopP > 0 && TopP <= 1))
            throw new ArgumentException($"top_p must be in (0, 1] (got {TopP})");
    }
}
