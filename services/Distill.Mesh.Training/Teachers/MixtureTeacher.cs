using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Training.Datasets;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Teachers;

/// <summary>
/// Several teachers as one: p = Σ wᵢ·pᵢ, the weighted average of their (tempered) next-token
/// distributions. Teachers must share the tokenizer. Dense signals only (a mixture of sparse
/// signals has no common support).
/// </summary>
public sealed class MixtureTeacher : ITeacherSignal
{
    private readonly IReadOnlyList<ITeacherSignal> _teachers;
    private readonly double[] _weights;

    public MixtureTeacher(IReadOnlyList<ITeacherSignal> teachers, IReadOnlyList<double> weights)
    {
        if (teachers.Count == 0 || teachers.Count != weights.Count)
            throw new ArgumentException("give one weight per teacher");
        if (weights.Any(w => w <= 0))
            throw new ArgumentException("teacher weights must be positive");
        var hashes = teachers.Select(t => t.Describe().TokenizerHash).Distinct().ToList();
        if (hashes.Count > 1)
            throw new ArgumentException("the teachers use different tokenizers; a mixture needs one token space");
        _teachers = teachers;
        var total = weights.Sum();
        _weights = weights.Select(w => w / total).ToArray();
    }

    public TeacherDescription Describe()
    {
        var descriptions = _teachers.Select(t => t.Describe()).ToList();
        return descriptions[0] with
        {
            Fingerprint = string.Join("+", descriptions.Select(d => d.Fingerprint[..16])),
            VocabSize = descriptions.Min(d => d.VocabSize),
            MaxContext = descriptions.Min(d => d.MaxContext),
        };
    }

    public async Task<ITeacherRows> ScoreAsync(Batch batch, SignalRequest request, CancellationToken cancellationToken = default)
    {
        if (request.Format != SignalFormat.Dense)
            throw new ArgumentException("a teacher mixture produces dense signals only");
        var rows = await Task.WhenAll(_teachers.Select(t => t.ScoreAsync(batch, request, cancellationToken)));
        return new MixtureRows(rows, _weights, request.Temperature);
    }

    /// <summary>
    /// Blocks of the mixture as logits T·log p, so that the loss's softmax(z / T) recovers p exactly.
    /// </summary>
    private sealed class MixtureRows(IReadOnlyList<ITeacherRows> teachers, double[] weights, double temperature) : ITeacherRows
    {
        public long Rows => teachers[0].Rows;

        public TeacherTarget Block(long start, long length)
        {
            using var scope = torch.NewDisposeScope();
            var weighted = teachers.Select((t, i) =>
            {
                var logits = ((DenseTeacherLogits)t.Block(start, length)).Logits;
                return (logits.to_type(ScalarType.Float32) / temperature).log_softmax(-1) + Math.Log(weights[i]);
            }).ToList();
            var mixture = torch.stack(weighted, 0).logsumexp(0);
            return new DenseTeacherLogits((mixture * temperature).MoveToOuterDisposeScope());
        }

        public void Dispose()
        {
            foreach (var rows in teachers)
                rows.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (var teacher in _teachers)
            teacher.Dispose();
    }
}
