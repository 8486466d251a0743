namespace Distill.Mesh.Modeling.Extraction;

/// <summary>What happened to one student tensor.</summary>
/// <param name="Name">Student tensor name.</param>
/// <param name="Module">Module path (PEFT key without the prefix and suffix).</param>
/// <param name="Shape">Student shape [out, in].</param>
/// <param name="Source">The teacher tensors it came from, with weights.</param>
/// <param name="Projection">How the teacher tensor reached the student's shape.</param>
/// <param name="Rank">LoRA rank (0 when skipped).</param>
/// <param name="Alpha">lora_alpha of the module.</param>
/// <param name="Svd">Exact or randomized.</param>
/// <param name="RelativeError">‖Δ − (α/r)·B·A‖_F / ‖Δ‖_F of the saved factors.</param>
/// <param name="OptimalRelativeError">The best rank-r error by Eckart–Young (null when not computed).</param>
/// <param name="DeltaNorm">‖Δ‖_F, Δ = projected teacher − student.</param>
/// <param name="Skipped">Why the tensor has no factors (null when it has).</param>
public sealed record TensorReport(
    string Name, string Module, long[] Shape, string Source, string Projection, int Rank, double Alpha, string Svd,
    double RelativeError, double? OptimalRelativeError, double DeltaNorm, string? Skipped = null)
{
    /// <summary>Error against the optimum (1 = optimal).</summary>
    public double? ErrorRatio => OptimalRelativeError is { } optimum && optimum > 0 ? RelativeError / optimum : OptimalRelativeError is null ? null : 1.0;
}

/// <summary>Which teacher experts went into each student expert of one student layer.</summary>
/// <param name="Layer">Student layer.</param>
/// <param name="Members">Per student expert: "teacher layer.expert" ids.</param>
/// <param name="Clustered">False when the experts map one to one.</param>
public sealed record ExpertClusters(int Layer, IReadOnlyList<string[]> Members, bool Clustered);

/// <summary>A finished shard (written after its safetensors file, which it names by hash).</summary>
public sealed record ShardReport(string PlanHash, int Shard, int Shards, string Sha256, long Bytes, IReadOnlyList<TensorReport> Tensors, IReadOnlyList<ExpertClusters> Clusters);

/// <summary>Progress of an extraction.</summary>
/// <param name="Kind">shard_started, tensor, shard_finished, shard_skipped (already done), consolidated.</param>
/// <param name="Shard">Shard index (−1 for consolidation).</param>
/// <param name="Done">Tensors done in this shard.</param>
/// <param name="Total">Tensors in this shard.</param>
/// <param name="Tensor">The tensor just done (kind tensor).</param>
/// <param name="Message">Text for people.</param>
public sealed record ExtractionEvent(string Kind, int Shard, int Done, int Total, TensorReport? Tensor = null, string Message = "");

/// <summary>The consolidated extraction: <c>extraction_report.json</c>.</summary>
public sealed record ExtractionSummary(
    string Teacher, string Student, IReadOnlyList<string> LayerMap, IReadOnlyList<ExpertClusters> Clusters, IReadOnlyList<TensorReport> Tensors,
    long AdapterParameters, long DenseParameters, IReadOnlyList<string> NotCarried)
{
    /// <summary>Adapter size against the dense weights it adapts (the public scripts' ranks made this ≈ 1).</summary>
    public double SizeRatio => DenseParameters == 0 ? 0 : (double)AdapterParameters / DenseParameters;
}
