using Distill.Mesh.Modeling.Generation;

namespace Distill.Mesh.Training.Teachers;

/// <summary>A teacher that writes continuations (sequence-level KD), in process or over the network.</summary>
public interface ITeacherGenerator
{
    /// <summary>
    /// The teacher's continuation of each prompt. Generation stops at the teacher's own stop
    /// tokens (its generation config) as well as <see cref="GenerationOptions.StopTokenIds"/>, or
    /// after <see cref="GenerationOptions.MaxNewTokens"/>. Greedy results do not depend on how the
    /// prompts are batched; sampled ones are seeded but may.
    /// </summary>
    Task<IReadOnlyList<IReadOnlyList<int>>> GenerateAsync(IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options, CancellationToken cancellationToken = default);
}
