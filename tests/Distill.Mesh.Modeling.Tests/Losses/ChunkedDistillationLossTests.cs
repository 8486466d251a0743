using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Losses;

public class ChunkedDistillationLossTests
{
    private const int N = 23, H = 8, V = 31;

    private sealed class Case : IDisposable
    {
        public Case(long seed)
        {
            using var g = new Generator((ulong)seed);
            Upstream = torch.randn(N, H, dtype: ScalarType.Float64, generator: g).requires_grad_();
            Weight = (torch.randn(V, H, dtype: ScalarType.Float64, generator: g) * 0.7).requires_grad_();
            TeacherHidden = torch.randn(N, H, dtype: ScalarType.Float64, generator: g);
            TeacherWeight = torch.randn(V + 5, H, dtype: ScalarType.Float64, generator: g); // padded vocabulary
            Labels = torch.randint(0, V, [N], generator: g);
            Labels[3] = torch.tensor(-100L);
            Labels[17] = torch.tensor(-100L);
        }

        public Tensor Upstream { get; }
        public Tensor Weight { get; }
        public Tensor TeacherHidden { get; }
        public Tensor TeacherWeight { get; }
        public Tensor Labels { get; }

        /// <summary>Hidden states that depend on a leaf, so gradients must flow through the fused function.</summary>
        public Tensor Hidden() => Upstream.tanh() * 2;

        public Tensor TeacherLogits() => TeacherHidden.matmul(TeacherWeight.narrow(0, 0, V).t());

        public void Dispose()
        {
            foreach (var t in new[] { Upstream, Weight, TeacherHidden, TeacherWeight, Labels })
                t.Dispose();
        }
    }

    private static (double Value, Tensor GradUpstream, Tensor GradWeight) Run(Case c, Func<Tensor, LossParts> loss)
    {
        c.Upstream.grad?.zero_();
        c.Weight.grad?.zero_();
        using var parts = loss(c.Hidden());
        parts.Total.backward();
        return (parts.Total.item<double>(), c.Upstream.grad!.clone(), c.Weight.grad!.clone());
    }

    [Theory]
    [InlineData("fkl", 4)]
    [InlineData("fkl", 6, 1.0, false)]
    [InlineData("fkl", 5, 0.5, false)]
    [InlineData("fkl-ce", 5)]
    [InlineData("fkl-ce", 3, 1.0, true)]
    [InlineData("rkl", 7)]
    [InlineData("jsd", 4)]
    [InlineData("skl", 23)]
    [InlineData("tvd", 6)]
    [InlineData("mse", 4)]
    [InlineData("sym", 100)]
    public void Chunked_EqualsPlain_ValueAndGradients(string loss, int block, double temperature = 2, bool t2 = true)
    {
        // fkl and fkl-ce against dense logits take the written-out gradient (ClosedFormBlockLoss), the others autograd.
        // groupElements 70 with V = 31: dW is folded every two (or fewer) blocks, not only at the end.
        using var c = new Case(61);
        var options = new DistillationLossOptions { Kind = DivergenceNames.Parse(loss), Temperature = temperature, ScaleByTemperatureSquared = t2, KdRatio = 0.7 };

        var plain = Run(c, h => DistillationLoss.Compute(h.matmul(c.Weight.t()), new DenseTeacherLogits(c.TeacherLogits()), c.Labels, options));
        var chunked = Run(c, h => ChunkedDistillationLoss.Compute(h, c.Weight, new ProjectedTeacherRows(c.TeacherHidden, c.TeacherWeight.narrow(0, 0, V)), c.Labels, options, blockSize: block, groupElements: 70));
        var oneGroup = Run(c, h => ChunkedDistillationLoss.Compute(h, c.Weight, new ProjectedTeacherRows(c.TeacherHidden, c.TeacherWeight.narrow(0, 0, V)), c.Labels, options, blockSize: block));
        TensorAssert.Close(oneGroup.GradWeight, chunked.GradWeight, atol: 1e-12);

        Assert.Equal(plain.Value, chunked.Value, 12);
        TensorAssert.Close(plain.GradUpstream, chunked.GradUpstream, atol: 1e-12);
        TensorAssert.Close(plain.GradWeight, chunked.GradWeight, atol: 1e-12);
    }

    [Fact]
    public void Chunked_TopKTailTarget_EqualsPlain()
    {
        using var c = new Case(62);
        var options = new DistillationLossOptions { Kind = DivergenceKind.ReverseKl, KdRatio = 1 };
        var signal = TopKTeacherSignal.FromLogits(c.TeacherLogits(), k: 6, temperature: 1, TopKMode.Tail);

        var plain = Run(c, h => DistillationLoss.Compute(h.matmul(c.Weight.t()), signal, c.Labels, options));
        var chunked = Run(c, h => ChunkedDistillationLoss.Compute(h, c.Weight, new TargetRows(signal), c.Labels, options, blockSize: 5));

        Assert.Equal(plain.Value, chunked.Value, 10);
        TensorAssert.Close(plain.GradUpstream, chunked.GradUpstream, atol: 1e-10);
        TensorAssert.Close(plain.GradWeight, chunked.GradWeight, atol: 1e-10);
    }

    [Fact]
    public void Chunked_FrozenWeightAndNoTeacher_GivesHiddenGradientOnly()
    {
        using var c = new Case(63);
        using var frozen = c.Weight.detach();
        var options = new DistillationLossOptions();

        using var hidden = c.Hidden();
        using var plain = DistillationLoss.Compute(hidden.matmul(frozen.t()), null, c.Labels, options);
        plain.Total.backward();
        using var expected = c.Upstream.grad!.clone();
        c.Upstream.grad!.zero_();
        using var chunked = ChunkedDistillationLoss.Compute(c.Hidden(), frozen, null, c.Labels, options, blockSize: 8);
        chunked.Total.backward();

        Assert.Equal(plain.Total.item<double>(), chunked.Total.item<double>(), 12);
        TensorAssert.Close(expected, c.Upstream.grad!, atol: 1e-12);
        Assert.Equal(plain.Ce.item<double>(), chunked.Ce.item<double>(), 12);
    }

    [Fact]
    public void Chunked_AllIgnored_IsZeroWithZeroGradients()
    {
        using var c = new Case(64);
        using var ignored = torch.full(N, -100L);

        using var parts = ChunkedDistillationLoss.Compute(c.Hidden(), c.Weight, new ProjectedTeacherRows(c.TeacherHidden, c.TeacherWeight.narrow(0, 0, V)), ignored, new DistillationLossOptions(), blockSize: 4);
        parts.Total.backward();

        Assert.Equal(0.0, parts.Total.item<double>());
        Assert.Equal(0.0, c.Upstream.grad!.abs().sum().item<double>());
        Assert.Equal(0.0, c.Weight.grad!.abs().sum().item<double>());
    }

    [Fact]
    public void Chunked_ShapeMismatch_IsAClearError()
    {
        using var c = new Case(65);
        var error = Assert.Throws<ArgumentException>(() => ChunkedDistillationLoss.Compute(c.Hidden(), torch.zeros(V, H + 1, dtype: ScalarType.Float64), null, c.Labels, new DistillationLossOptions()));
        Assert.Contains("do not fit", error.Message);
    }
}
