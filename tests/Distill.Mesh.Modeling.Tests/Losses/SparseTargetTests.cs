using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Losses;

public class SparseTargetTests
{
    private const int V = 40;

    private static (Tensor Student, Tensor Teacher) Logits(long seed, int rows = 5)
    {
        using var g = new Generator((ulong)seed);
        return (torch.randn(rows, V, dtype: ScalarType.Float64, generator: g) * 2, torch.randn(rows, V, dtype: ScalarType.Float64, generator: g) * 2);
    }

    private static Tensor PerPosition(Tensor student, TeacherTarget target, DivergenceKind kind) =>
        DistillationLoss.PerPosition(student, target, new DistillationLossOptions { Kind = kind, Temperature = 1.3 });

    [Theory]
    [InlineData(DivergenceKind.ForwardKl)]
    [InlineData(DivergenceKind.ReverseKl)]
    [InlineData(DivergenceKind.GeneralizedJsd)]
    [InlineData(DivergenceKind.SkewReverseKl)]
    [InlineData(DivergenceKind.TotalVariation)]
    public void TopKTail_IsExactAtKEqualsVAndVMinusOne(DivergenceKind kind)
    {
        var (student, teacher) = Logits(71);
        using var dense = PerPosition(student, new DenseTeacherLogits(teacher), kind);

        // With k = V − 1 the tail bucket is the one remaining token: still exact.
        foreach (var k in new[] { V, V - 1 })
        {
            using var sparse = PerPosition(student, TopKTeacherSignal.FromLogits(teacher, k, 1.3, TopKMode.Tail), kind);
            TensorAssert.Close(dense, sparse, atol: 1e-10, what: $"k = {k}");
        }

        using var coarse = PerPosition(student, TopKTeacherSignal.FromLogits(teacher, 4, 1.3, TopKMode.Tail), kind);
        Assert.True(TensorAssert.MaxAbsDiff(dense, coarse) > 1e-4, "k = 4 should not be exact");
    }

    [Fact]
    public void TopKZero_IsExactOnlyAtKEqualsV_AndErrorShrinksWithK()
    {
        var (student, teacher) = Logits(72);
        using var dense = PerPosition(student, new DenseTeacherLogits(teacher), DivergenceKind.ForwardKl);

        double Gap(int k)
        {
            using var sparse = PerPosition(student, TopKTeacherSignal.FromLogits(teacher, k, 1.3, TopKMode.Zero), DivergenceKind.ForwardKl);
            return TensorAssert.MaxAbsDiff(dense, sparse);
        }

        Assert.True(Gap(V) < 1e-10);
        Assert.True(Gap(V - 1) > 1e-8);
        Assert.True(Gap(32) < Gap(8));
    }

    [Fact]
    public void TopKZero_RejectsLossesItCannotRepresent()
    {
        var (student, teacher) = Logits(73);
        Assert.Throws<ArgumentException>(() => PerPosition(student, TopKTeacherSignal.FromLogits(teacher, 5, 1.3, TopKMode.Zero), DivergenceKind.ReverseKl));
    }

    [Theory]
    [InlineData(DivergenceKind.ForwardKl)]
    [InlineData(DivergenceKind.ForwardKlCrossEntropy)]
    public void Sampled_MeanOverManyDrawsApproachesDenseLossAndGradient(DivergenceKind kind)
    {
        const int draws = 20_000, samples = 8;
        var (students, teachers) = Logits(74, rows: 1);
        using var generator = new Generator(75);
        using var z = students.requires_grad_();

        using var dense = DistillationLoss.PerPosition(z, new DenseTeacherLogits(teachers), new DistillationLossOptions { Kind = kind });
        dense.sum().backward();
        using var denseGrad = z.grad!.clone();
        z.grad!.zero_();

        // Every row of the batch is the same position, with its own independent draw.
        var signal = SampledTeacherSignal.FromLogits(teachers.expand(draws, V), samples, 1.0, generator);
        using var estimates = DistillationLoss.PerPosition(z.expand(draws, V), signal, new DistillationLossOptions { Kind = kind });
        estimates.mean().backward();

        var mean = estimates.mean().item<double>();
        var standardError = estimates.std().item<double>() / Math.Sqrt(draws);
        Assert.True(Math.Abs(mean - dense.item<double>()) < 4 * standardError, $"mean {mean:F5} vs dense {dense.item<double>():F5} (se {standardError:F5})");
        var relative = (z.grad! - denseGrad).norm().item<double>() / denseGrad.norm().item<double>();
        Assert.True(relative < 0.05, $"gradient relative error {relative:F4}");
    }

    [Fact]
    public void Sampled_RejectsNonLinearLosses()
    {
        var (student, teacher) = Logits(76);
        using var generator = new Generator(1);
        Assert.Throws<ArgumentException>(() => PerPosition(student, SampledTeacherSignal.FromLogits(teacher, 4, 1, generator), DivergenceKind.GeneralizedJsd));
    }
}
