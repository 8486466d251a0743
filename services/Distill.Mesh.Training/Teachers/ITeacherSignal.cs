using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Training.Datasets;

namespace Distill.Mesh.Training.Teachers;

/// <summary>What a teacher is: enough to check it against a student before step 1 and to key a cache.</summary>
/// <param name="Fingerprint">Hash of config.json and the weights' names, shapes and dtypes.</param>
/// <param name="TokenizerHash">The tokenizer's id ↔ token hash.</param>
/// <param name="VocabSize">Rows of the output head (may exceed the tokenizer's ids: padding).</param>
/// <param name="TokenizerVocabSize">Ids the tokenizer uses.</param>
/// <param name="MaxContext">max_position_embeddings.</param>
public sealed record TeacherDescription(string Fingerprint, string TokenizerHash, int VocabSize, int TokenizerVocabSize, int MaxContext);

/// <summary>The teacher signal a run asks for.</summary>
public enum SignalFormat
{
    /// <summary>Full logits (in process only: never sent over a network).</summary>
    Dense,

    /// <summary>Top-k ids and log-probs per position, with tail mass.</summary>
    TopK,

    /// <summary>Sampled ids with importance weights.</summary>
    Sampled,
}

/// <param name="Format">Dense, top-k or sampled.</param>
/// <param name="Vocabulary">Ids to keep (the ids teacher and student share).</param>
/// <param name="Temperature">Temperature of sparse signals (dense logits are raw).</param>
/// <param name="K">k of top-k.</param>
/// <param name="Mode">Top-k tail handling.</param>
/// <param name="Samples">Tokens sampled per position.</param>
/// <param name="Seed">Seed of the sampling (so a resumed run draws the same tokens).</param>
/// <param name="Precision">How a remote teacher packs values (in process, signals are exact).</param>
public sealed record SignalRequest(SignalFormat Format, int Vocabulary, double Temperature = 1.0, int K = 64, TopKMode Mode = TopKMode.Tail, int Samples = 16, long Seed = 0, SignalPrecision Precision = SignalPrecision.Fp32);

/// <summary>
/// "Give me the teacher's signal for these sequences." For inputs [B, T] the result has B·(T − 1)
/// rows: row b·(T − 1) + t is the teacher's distribution of token t + 1 of sequence b, aligned
/// with the student's shifted labels. In process here; a gRPC client with a cache implements it
/// in the mesh.
/// </summary>
public interface ITeacherSignal : IDisposable
{
    TeacherDescription Describe();

    /// <param name="batch">Ids [B, T], attention mask, and for packed sequences document and position ids.</param>
    /// <param name="request">What signal to produce.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>Rows that own their tensors: dispose them after use.</returns>
    Task<ITeacherRows> ScoreAsync(Batch batch, SignalRequest request, CancellationToken cancellationToken = default);
}
