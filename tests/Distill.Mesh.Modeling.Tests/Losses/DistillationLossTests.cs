using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Testing;
using TorchSharp;
using static System.Math;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Losses;

/// <summary>
/// Every loss on one position with teacher p = [0.5, 0.3, 0.2] and student q = [0.2, 0.5, 0.3],
/// given as logits log p and log q, against the arithmetic written out in float64.
/// </summary>
public class DistillationLossTests
{
    private static readonly double[] P = [0.5, 0.3, 0.2];
    private static readonly double[] Q = [0.2, 0.5, 0.3];

    private static double Loss(DivergenceKind kind, double beta = 0.5, double alpha = 0.1, double ratio = 0.5)
    {
        using var student = torch.tensor(Q.Select(x => Log(x)).ToArray(), dtype: ScalarType.Float64).unsqueeze(0);
        using var teacher = torch.tensor(P.Select(x => Log(x)).ToArray(), dtype: ScalarType.Float64).unsqueeze(0);
        var options = new DistillationLossOptions { Kind = kind, Beta = beta, Alpha = alpha, SymmetricRatio = ratio };
        using var value = DistillationLoss.PerPosition(student, new DenseTeacherLogits(teacher), options);
        return value.item<double>();
    }

    // KL(a‖b) written term by term for the three-token case.
    private static double Kl(double[] a, double[] b) => a[0] * Log(a[0] / b[0]) + a[1] * Log(a[1] / b[1]) + a[2] * Log(a[2] / b[2]);

    [Fact]
    public void ForwardKl_HandComputed()
    {
        // 0.5·ln(0.5/0.2) + 0.3·ln(0.3/0.5) + 0.2·ln(0.2/0.3) = 0.4581454 − 0.1532477 − 0.0810930
        var expected = 0.5 * Log(0.5 / 0.2) + 0.3 * Log(0.3 / 0.5) + 0.2 * Log(0.2 / 0.3);
        Assert.Equal(0.2238047, expected, 7);
        Assert.Equal(expected, Loss(DivergenceKind.ForwardKl), 6);
    }

    [Fact]
    public void ForwardKlCrossEntropyForm_IsKlPlusTeacherEntropy()
    {
        var expected = -(0.5 * Log(0.2) + 0.3 * Log(0.5) + 0.2 * Log(0.3));
        var entropy = -(0.5 * Log(0.5) + 0.3 * Log(0.3) + 0.2 * Log(0.2));
        Assert.Equal(Kl(P, Q) + entropy, expected, 12);
        Assert.Equal(expected, Loss(DivergenceKind.ForwardKlCrossEntropy), 6);
    }

    [Fact]
    public void ReverseKl_HandComputed()
    {
        var expected = 0.2 * Log(0.2 / 0.5) + 0.5 * Log(0.5 / 0.3) + 0.3 * Log(0.3 / 0.2);
        Assert.Equal(expected, Loss(DivergenceKind.ReverseKl), 6);
    }

    [Fact]
    public void SymmetricKl_PutsRatioOnTheForwardTerm()
    {
        Assert.Equal(0.5 * Kl(P, Q) + 0.5 * Kl(Q, P), Loss(DivergenceKind.SymmetricKl), 6);
        Assert.Equal(0.8 * Kl(P, Q) + 0.2 * Kl(Q, P), Loss(DivergenceKind.SymmetricKl, ratio: 0.8), 6);
    }

    [Fact]
    public void GeneralizedJsd_HandComputedAndTrlEndPoints()
    {
        // β = 0.5: M = (p + q) / 2 = [0.35, 0.40, 0.25]
        double[] m = [0.35, 0.40, 0.25];
        Assert.Equal(0.5 * Kl(P, m) + 0.5 * Kl(Q, m), Loss(DivergenceKind.GeneralizedJsd, beta: 0.5), 6);
        // β = 0.1: M = 0.1·p + 0.9·q = [0.23, 0.48, 0.29]
        double[] m01 = [0.23, 0.48, 0.29];
        Assert.Equal(0.1 * Kl(P, m01) + 0.9 * Kl(Q, m01), Loss(DivergenceKind.GeneralizedJsd, beta: 0.1), 6);
        // TRL's ends: β = 0 is forward KL, β = 1 is reverse KL (not the JSD limit, which is 0).
        Assert.Equal(Kl(P, Q), Loss(DivergenceKind.GeneralizedJsd, beta: 0), 6);
        Assert.Equal(Kl(Q, P), Loss(DivergenceKind.GeneralizedJsd, beta: 1), 6);
    }

    [Fact]
    public void SkewKls_HandComputed()
    {
        // skew forward, α = 0.1: KL(p ‖ 0.1·p + 0.9·q) = KL(p ‖ [0.23, 0.48, 0.29])
        Assert.Equal(Kl(P, [0.23, 0.48, 0.29]), Loss(DivergenceKind.SkewForwardKl, alpha: 0.1), 6);
        // skew reverse, α = 0.1: KL(q ‖ 0.9·p + 0.1·q) = KL(q ‖ [0.47, 0.32, 0.21])
        Assert.Equal(Kl(Q, [0.47, 0.32, 0.21]), Loss(DivergenceKind.SkewReverseKl, alpha: 0.1), 6);
    }

    [Fact]
    public void TotalVariation_HandComputed()
    {
        // ½(|0.5 − 0.2| + |0.3 − 0.5| + |0.2 − 0.3|) = ½(0.3 + 0.2 + 0.1)
        Assert.Equal(0.3, Loss(DivergenceKind.TotalVariation), 6);
    }

    [Fact]
    public void LogitMse_IsMeanSquaredDifferenceOfRawLogits()
    {
        using var student = torch.tensor(new[] { 1.0, 2.0, 3.0 }, dtype: ScalarType.Float64).unsqueeze(0);
        using var teacher = torch.tensor(new[] { 0.0, 2.0, 5.0 }, dtype: ScalarType.Float64).unsqueeze(0);
        var options = new DistillationLossOptions { Kind = DivergenceKind.LogitMse, Temperature = 4, ScaleByTemperatureSquared = true };

        using var value = DistillationLoss.PerPosition(student, new DenseTeacherLogits(teacher), options);

        // ((1 − 0)² + (2 − 2)² + (3 − 5)²) / 3 = 5/3, untouched by temperature
        Assert.Equal(5.0 / 3, value.item<double>(), 6);
    }

    [Fact]
    public void Temperature_DividesLogitsAndT2ScalesTheSoftLoss()
    {
        // Logits 2·ln p at T = 2 soften back to p exactly.
        using var student = torch.tensor(Q.Select(q => 2 * Log(q)).ToArray(), dtype: ScalarType.Float64).unsqueeze(0);
        var teacher = new DenseTeacherLogits(torch.tensor(P.Select(p => 2 * Log(p)).ToArray(), dtype: ScalarType.Float64).unsqueeze(0));

        using var plain = DistillationLoss.PerPosition(student, teacher, new DistillationLossOptions { Temperature = 2 });
        using var scaled = DistillationLoss.PerPosition(student, teacher, new DistillationLossOptions { Temperature = 2, ScaleByTemperatureSquared = true });

        Assert.Equal(Kl(P, Q), plain.item<double>(), 6);
        Assert.Equal(4 * Kl(P, Q), scaled.item<double>(), 5);
    }

    [Fact]
    public void Compute_MixesCeAndKd_OverValidPositionsOnly()
    {
        // Two positions: the first ignored (label −100), the second with label 1.
        using var student = torch.tensor(new[] { 9.0, -3.0, 0.5, Log(0.2), Log(0.5), Log(0.3) }, dtype: ScalarType.Float64).reshape(2, 3);
        using var teacher = torch.tensor(new[] { -4.0, 7.0, 1.0, Log(0.5), Log(0.3), Log(0.2) }, dtype: ScalarType.Float64).reshape(2, 3);
        using var labels = torch.tensor(new long[] { -100, 1 });

        using var parts = DistillationLoss.Compute(student, new DenseTeacherLogits(teacher), labels, new DistillationLossOptions { KdRatio = 0.25 });

        var ce = -Log(0.5);
        Assert.Equal(ce, parts.Ce.item<double>(), 6);
        Assert.Equal(Kl(P, Q), parts.Kd.item<double>(), 6);
        Assert.Equal(0.75 * ce + 0.25 * Kl(P, Q), parts.Total.item<double>(), 6);
    }

    [Fact]
    public void Compute_AllPositionsIgnored_GivesZeroLossAndZeroGradient()
    {
        using var generator = new Generator(11);
        using var student = torch.randn(4, 7, dtype: ScalarType.Float64, generator: generator).requires_grad_();
        using var teacher = torch.randn(4, 7, dtype: ScalarType.Float64, generator: generator);
        using var labels = torch.full(4, -100L);

        using var parts = DistillationLoss.Compute(student, new DenseTeacherLogits(teacher), labels, new DistillationLossOptions());
        parts.Total.backward();

        Assert.Equal(0.0, parts.Total.item<double>());
        Assert.False(parts.Total.isnan().item<bool>());
        Assert.Equal(0.0, student.grad!.abs().sum().item<double>());
    }

    [Fact]
    public void MaskedTeacherLogits_InfinitiesGiveNoNaN()
    {
        // Teacher gives token 2 zero probability (−∞ logit), as a vocabulary mask would.
        using var student = torch.tensor(new[] { 0.1, 0.2, 0.3 }, dtype: ScalarType.Float64).unsqueeze(0);
        using var teacher = torch.tensor(new[] { 0.0, 0.0, double.NegativeInfinity }, dtype: ScalarType.Float64).unsqueeze(0);

        foreach (var kind in new[] { DivergenceKind.ForwardKl, DivergenceKind.ReverseKl, DivergenceKind.GeneralizedJsd, DivergenceKind.TotalVariation })
        {
            using var value = DistillationLoss.PerPosition(student, new DenseTeacherLogits(teacher), new DistillationLossOptions { Kind = kind });
            Assert.True(!value.isnan().item<bool>(), kind.ToString());
        }
    }

    [Theory]
    [InlineData(DivergenceKind.ForwardKl)]
    [InlineData(DivergenceKind.ForwardKlCrossEntropy)]
    [InlineData(DivergenceKind.ReverseKl)]
    [InlineData(DivergenceKind.SymmetricKl)]
    [InlineData(DivergenceKind.GeneralizedJsd)]
    [InlineData(DivergenceKind.SkewForwardKl)]
    [InlineData(DivergenceKind.SkewReverseKl)]
    [InlineData(DivergenceKind.TotalVariation)]
    [InlineData(DivergenceKind.LogitMse)]
    public void Gradient_MatchesCentralFiniteDifferences(DivergenceKind kind)
    {
        using var generator = new Generator(7);
        using var teacher = torch.randn(3, 6, dtype: ScalarType.Float64, generator: generator);
        using var z = torch.randn(3, 6, dtype: ScalarType.Float64, generator: generator).requires_grad_();
        var options = new DistillationLossOptions { Kind = kind, Temperature = 1.5, ScaleByTemperatureSquared = true, Beta = 0.3, Alpha = 0.2, SymmetricRatio = 0.7 };
        double F(Tensor logits)
        {
            using var v = DistillationLoss.PerPosition(logits, new DenseTeacherLogits(teacher), options).sum();
            return v.item<double>();
        }

        using (var loss = DistillationLoss.PerPosition(z, new DenseTeacherLogits(teacher), options).sum())
            loss.backward();

        const double h = 1e-6;
        using var noGrad = torch.no_grad();
        var analytic = z.grad!.data<double>().ToArray();
        var baseValues = z.detach().clone();
        for (var i = 0; i < analytic.Length; i++)
        {
            using var plus = baseValues.clone().view(-1);
            using var minus = baseValues.clone().view(-1);
            plus[i] += h;
            minus[i] -= h;
            var numeric = (F(plus.view(3, 6)) - F(minus.view(3, 6))) / (2 * h);
            // TVD has kinks at p = q; random logits keep away from them.
            Assert.True(Abs(numeric - analytic[i]) < 1e-5, $"{kind} d/dz[{i}]: analytic {analytic[i]:G8}, numeric {numeric:G8}");
        }
    }

    [Fact]
    public void Options_OutOfRange_AreRejected()
    {
        using var z = torch.zeros(1, 3);
        Assert.Throws<ArgumentException>(() => DistillationLoss.PerPosition(z, new DenseTeacherLogits(z), new DistillationLossOptions { Temperature = 0 }));
        Assert.Throws<ArgumentException>(() => DistillationLoss.PerPosition(z, new DenseTeacherLogits(z), new DistillationLossOptions { Beta = 1.5 }));
        Assert.Throws<ArgumentException>(() => DistillationLoss.PerPosition(z, new DenseTeacherLogits(torch.zeros(1, 4)), new DistillationLossOptions()));
    }
}
