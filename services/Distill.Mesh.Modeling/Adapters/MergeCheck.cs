namespace Distill.Mesh.Modeling.Adapters;

/// <summary>
/// The adapted model's logits (float32, adapter applied unmerged) against the merged model's, on
/// seeded random token sequences: first the merged float32 weights in memory (the merge itself),
/// then the written folder loaded back with the strict loader (the merge in the output dtype).
/// Tolerances are fractions of the logits' scale, max(1, max |reference logit|).
/// </summary>
/// <param name="Sequences">Sequences compared.</param>
/// <param name="Tokens">Tokens per sequence.</param>
/// <param name="Scale">max(1, max |reference logit|).</param>
/// <param name="MergeMaxAbsDiff">Largest |difference| of the in-memory float32 merge.</param>
/// <param name="MergeTolerance">Its bound (float32's fraction × scale).</param>
/// <param name="ExportMaxAbsDiff">Largest |difference| of the written model.</param>
/// <param name="ExportTolerance">Its bound (the output dtype's fraction × scale).</param>
public sealed record MergeCheck(int Sequences, int Tokens, double Scale, double MergeMaxAbsDiff, double MergeTolerance, double ExportMaxAbsDiff, double ExportTolerance);
