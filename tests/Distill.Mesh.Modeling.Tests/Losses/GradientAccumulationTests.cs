using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Losses;

public class GradientAccumulationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FourMicroBatches_NormalisedByTheStepsTokens_EqualOneBigBatch(bool chunked)
    {
        const int batch = 8, length = 6, hidden = 5, vocab = 11;
        using var g = new Generator(81);
        using var x = torch.randn(batch * length, hidden, dtype: ScalarType.Float64, generator: g);
        using var teacher = torch.randn(batch * length, vocab, dtype: ScalarType.Float64, generator: g);
        using var weight = torch.randn(vocab, hidden, dtype: ScalarType.Float64, generator: g).requires_grad_();
        // Sequences with very different numbers of valid tokens (padding and prompt masking).
        using var labels = torch.randint(0, vocab, [batch, length], generator: g);
        for (var b = 0; b < batch; b++)
            labels[b].narrow(0, 0, b % 5).fill_(-100);
        var flatLabels = labels.reshape(-1);
        var options = new DistillationLossOptions { Kind = DivergenceKind.ReverseKl, KdRatio = 0.6 };
        var stepTokens = (double)flatLabels.ne(-100).sum().item<long>();

        LossParts Loss(long start, long count, double? normalizer)
        {
            var rows = x.narrow(0, start, count);
            var target = new DenseTeacherLogits(teacher.narrow(0, start, count));
            var micro = flatLabels.narrow(0, start, count);
            return chunked
                ? ChunkedDistillationLoss.Compute(rows, weight, new TargetRows(target), micro, options, normalizer, blockSize: 5)
                : DistillationLoss.Compute(rows.matmul(weight.t()), target, micro, options, normalizer);
        }

        using (var whole = Loss(0, batch * length, null))
            whole.Total.backward();
        using var expected = weight.grad!.clone();

        weight.grad!.zero_();
        for (var m = 0; m < 4; m++)
        {
            using var part = Loss(m * 2 * length, 2 * length, stepTokens);
            part.Total.backward();
        }

        TensorAssert.Close(expected, weight.grad!, atol: 1e-12);

        // Normalising each micro-batch by its own tokens (the common bug) gives a different gradient.
        weight.grad!.zero_();
        for (var m = 0; m < 4; m++)
        {
            using var part = Loss(m * 2 * length, 2 * length, null);
            (part.Total / 4).backward();
        }

        Assert.True(TensorAssert.MaxAbsDiff(expected, weight.grad!) > 1e-4);
    }
}
