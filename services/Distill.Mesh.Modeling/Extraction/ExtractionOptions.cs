using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Extraction;

/// <summary>What a weight-space extraction produces and how.</summary>
public sealed record ExtractionOptions
{
    /// <summary>LoRA rank of every module without a <see cref="RankPattern"/> entry.</summary>
    public int Rank { get; init; } = 16;

    /// <summary>Rank per module type (<c>q_proj</c>, <c>down_proj</c>, <c>w2</c> …) or per module path, as PEFT's <c>rank_pattern</c>.</summary>
    public IReadOnlyDictionary<string, int> RankPattern { get; init; } = new Dictionary<string, int>();

    /// <summary>
    /// <c>lora_alpha</c>; null means alpha = rank for every module (scaling 1, as mergekit writes).
    /// The alpha/r scaling is divided out of the factors once; the loader applies it (PEFT's contract).
    /// </summary>
    public double? Alpha { get; init; }

    /// <summary>How the delta is factorised.</summary>
    public SvdMethod Svd { get; init; } = SvdMethod.Exact;

    /// <summary>Extra directions of the randomized SVD.</summary>
    public int Oversample { get; init; } = 8;

    /// <summary>Power iterations of the randomized SVD.</summary>
    public int PowerIterations { get; init; } = 2;

    /// <summary>Seeds the randomized SVD, k-means and expert fingerprints.</summary>
    public long Seed { get; init; }

    /// <summary>Module types to extract (last name segment); null: every linear weight of the decoder layers (attention, MLP, experts, routers).</summary>
    public IReadOnlyList<string>? TargetModules { get; init; }

    /// <summary>Also extract <c>lm_head</c> (an ordinary linear module for PEFT); else it is reported as not carried.</summary>
    public bool IncludeLmHead { get; init; }

    /// <summary>
    /// Also extract <c>embed_tokens</c>, as PEFT's embedding LoRA (<c>lora_embedding_A</c> [r, vocab],
    /// <c>lora_embedding_B</c> [hidden, r]); else it is reported as not carried. Refused for a
    /// student whose output head is tied to its embeddings.
    /// </summary>
    public bool IncludeEmbeddings { get; init; }

    /// <summary>Arithmetic dtype (float32, or float64 for reference checks).</summary>
    public ScalarType ComputeDtype { get; init; } = ScalarType.Float32;

    /// <summary>Dtype of the saved factors.</summary>
    public ScalarType AdapterDtype { get; init; } = ScalarType.Float32;

    /// <summary>
    /// Report each tensor's Eckart–Young optimum. Null (the default): with the exact SVD, where it
    /// is free (the SVD has the whole spectrum); true: also with the randomized one, where it costs
    /// the singular values of every delta (about an exact SVD each); false: never.
    /// </summary>
    public bool? ReportOptimum { get; init; }

    /// <summary>Shards the work is split into (one per worker or GPU pod).</summary>
    public int Shards { get; init; } = 1;

    public void Validate()
    {
        if (Rank < 1)
            throw new ArgumentException($"rank must be ≥ 1 (got {Rank})");
        if (RankPattern.Any(p => p.Value < 1))
            throw new ArgumentException($"rank_pattern ranks must be ≥ 1 ({string.Join(", ", RankPattern.Where(p => p.Value < 1).Select(p => $"{p.Key}={p.Value}"))})");
        if (Alpha is { } alpha && !(alpha > 0))
            throw new ArgumentException($"lora_alpha must be > 0 (got {alpha})");
        if (Shards < 1)
            throw new ArgumentException($"shards must be ≥ 1 (got {Shards})");
        if (Oversample < 0 || PowerIterations < 0)
            throw new ArgumentException("oversample and power_iterations must be ≥ 0");
        if (ComputeDtype is not (ScalarType.Float32 or ScalarType.Float64))
            throw new ArgumentException($"compute dtype must be float32 or float64 (got {ComputeDtype})");
        if (AdapterDtype is not (ScalarType.Float32 or ScalarType.Float64 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"adapter dtype must be a float type (got {AdapterDtype})");
    }
}
