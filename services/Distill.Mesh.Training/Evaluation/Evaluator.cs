using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Recipes;
using Distill.Mesh.Training.Teachers;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Evaluation;

/// <summary>
/// Held-out metrics over trained tokens: perplexity, and with a teacher the forward KL from the
/// teacher (T = 1) and top-1 agreement. Logits are taken a block of positions at a time.
/// </summary>
public static class Evaluator
{
    /// <param name="model">The student.</param>
    /// <param name="examples">Held-out examples.</param>
    /// <param name="teacher">The teacher, if any.</param>
    /// <param name="vocabulary">Ids teacher and student share.</param>
    /// <param name="padTokenId">Padding id.</param>
    /// <param name="batchSize">Sequences per forward pass.</param>
    /// <param name="cancellationToken">Cancels teacher calls.</param>
    /// <param name="denseTeacher">
    /// The teacher can send full logits (in process). A remote teacher sends top-64 with tail: KL is
    /// then measured over those k + 1 buckets (a lower bound of the full KL) and top-1 agreement
    /// against the teacher's first id.
    /// </param>
    public static async Task<EvalResult> EvaluateAsync(CausalLanguageModel model, IReadOnlyList<TokenizedExample> examples, ITeacherSignal? teacher, int vocabulary, int padTokenId, int batchSize = 8, CancellationToken cancellationToken = default, bool denseTeacher = true)
    {
        var request = denseTeacher
            ? new SignalRequest(SignalFormat.Dense, vocabulary)
            : new SignalRequest(SignalFormat.TopK, vocabulary, 1.0, Math.Min(64, vocabulary));
        if (examples.Count == 0)
            throw new ArgumentException("no examples to evaluate");
        var wasTraining = model.training;
        model.eval();
        double nll = 0, kl = 0, agree = 0;
        long tokens = 0;
        try
        {
            foreach (var chunk in examples.Chunk(batchSize))
            {
                using var batch = Batching.Collate(chunk, padTokenId, model.Device);
                var length = batch.InputIds.shape[1];
                if (length < 2)
                    continue;
                // Awaited before no_grad and the dispose scope: both are thread-local.
                using var teacherRows = teacher is null ? null : new DeviceRows(await teacher.ScoreAsync(batch, request, cancellationToken), model.Device);
                using var noGrad = torch.no_grad();
                using var scope = torch.NewDisposeScope();
                var (rows, labels) = TrainingStep.Shifted(model.Hidden(batch.InputIds, batch.AttentionMask, batch.PositionIds, null, batch.DocumentIds), batch.Labels);
                var block = ChunkedDistillationLoss.DefaultBlockSize(vocabulary);
                for (long start = 0; start < rows.shape[0]; start += block)
                {
                    using var inner = torch.NewDisposeScope();
                    var count = Math.Min(block, rows.shape[0] - start);
                    var y = labels.narrow(0, start, count);
                    var valid = y.ne(TokenizedExample.IgnoreIndex);
                    var n = valid.sum().item<long>();
                    if (n == 0)
                        continue;
                    var logits = model.Logits(rows.narrow(0, start, count)).narrow(-1, 0, vocabulary).to_type(ScalarType.Float32);
                    nll += DistillationLoss.HardCrossEntropy(logits, y).sum().item<float>();
                    tokens += n;
                    if (teacherRows is null)
                        continue;
                    var target = teacherRows.Block(start, count);
                    var perPosition = DistillationLoss.PerPosition(logits, target, new DistillationLossOptions { Kind = DivergenceKind.ForwardKl });
                    var teacherTop = target is TopKTeacherSignal topK ? topK.Ids.select(-1, 0) : ((DenseTeacherLogits)target).Logits.argmax(-1);
                    kl += perPosition.masked_select(valid).sum().item<float>();
                    agree += logits.argmax(-1).eq(teacherTop).logical_and(valid).sum().item<long>();
                }
            }
        }
        finally
        {
            if (wasTraining)
                model.train();
        }

        tokens = Math.Max(tokens, 1);
        return new EvalResult(Math.Exp(nll / tokens), teacher is null ? null : kl / tokens, teacher is null ? null : agree / tokens, tokens);
    }
}
