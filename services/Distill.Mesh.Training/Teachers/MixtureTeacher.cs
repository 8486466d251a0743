using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Training.Datasets;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Teachers;

/// <summary>
/// Several teachers as one: p = Σ wᵢ·pᵢ, the weighted average of their (tempered) next-token
/// distributions, given to the loss as dense rows a block at a time. Teachers must share the
/// tokenizer. Each teacher may send dense logits (in process) or top-k (a teacher service): a
/// top-k row is made dense by spreading its tail mass evenly over the ids outside its k (exact
/// when k = V − 1; with top-k "zero" the k are renormalised and the rest get nothing). Sampled
/// signals have no per-id distribution to mix and are refused.
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
        if (request.Format == SignalFormat.Sampled)
            throw new ArgumentException("a teacher mixture needs per-id distributions: use signal.format dense (in process) or topk (teacher services), not sampled");
        var rows = await Task.WhenAll(_teachers.Select(t => t.ScoreAsync(batch, request, cancellationToken)));
        return new MixtureRows(rows, _weights, request.Temperature, request.Vocabulary);
    }

    /// <summary>
    /// Blocks of the mixture as logits T·log p, so that the loss's softmax(z / T) recovers p exactly.
    /// </summary>
    private sealed class MixtureRows(IReadOnlyList<ITeacherRows> teachers, double[] weights, double temperature, int vocabulary) : ITeacherRows
    {
        public long Rows => teachers[0].Rows;

        public TeacherTarget Block(long start, long length)
        {
            using var scope = torch.NewDisposeScope();
            // Teachers may sit on different devices (each on its own GPU, or decoded on the CPU): mixed on the first one's.
            var blocks = teachers.Select(t => t.Block(start, length)).ToList();
            var weighted = blocks.Select((block, i) => LogProbs(block.To(blocks[0].Device)) + Math.Log(weights[i])).ToList();
            var mixture = torch.stack(weighted, 0).logsumexp(0);
            return new DenseTeacherLogits((mixture * temperature).MoveToOuterDisposeScope());
        }

        /// <summary>A teacher's tempered log-distribution over the shared ids [n, V].</summary>
        private Tensor LogProbs(TeacherTarget block)
        {
            switch (block)
            {
                case DenseTeacherLogits dense:
                    return (dense.Logits.to_type(ScalarType.Float32) / temperature).log_softmax(-1);
                case TopKTeacherSignal topK:
                    var logProbs = topK.LogProbs.to_type(ScalarType.Float32);
                    var rest = vocabulary - topK.Ids.shape[1];
                    var known = logProbs.exp().sum(-1, keepdim: true);
                    Tensor fill;
                    if (topK.Mode == TopKMode.Zero || rest == 0)
                    {
                        logProbs = topK.Mode == TopKMode.Zero ? logProbs - known.log() : logProbs;
                        fill = torch.full_like(known, double.NegativeInfinity);
                    }
                    else
                    {
                        var tail = topK.TailMass?.to_type(ScalarType.Float32).reshape(known.shape) ?? (1 - known);
                        fill = (tail.clamp_min(0) / rest).log();
                    }

                    // Ids no teacher mass reaches get a finite floor, so no 0·log 0 becomes NaN in the loss.
                    return fill.expand(logProbs.shape[0], vocabulary).clone().scatter_(1, topK.Ids, logProbs).clamp_min(-1e4f);
                default:
                    throw new ArgumentException($"a teacher mixture cannot mix {block.GetType().Name} signals");
            }
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
