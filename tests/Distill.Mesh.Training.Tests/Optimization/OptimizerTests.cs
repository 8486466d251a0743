using Distill.Mesh.Testing;
using Distill.Mesh.Training.Optimization;
using AdamW = Distill.Mesh.Training.Optimization.AdamW;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Tests.Optimization;

public class OptimizerTests
{
    /// <summary>Runs 5 steps of a quadratic-ish loss with our optimizer and with TorchSharp's own, from equal weights.</summary>
    private static (Tensor Ours, Tensor Reference) Compare(Func<Parameter, TrainingOptimizer> ours, Func<Parameter, optim.Optimizer> reference)
    {
        using var g = new Generator(91);
        var start = torch.randn(4, 3, dtype: ScalarType.Float64, generator: g);
        var target = torch.randn(4, 3, dtype: ScalarType.Float64, generator: g);
        var a = new Parameter(start.clone());
        var b = new Parameter(start.clone());
        using var mine = ours(a);
        var theirs = reference(b);
        for (var i = 0; i < 5; i++)
        {
            mine.ZeroGrad();
            ((a - target).pow(3).abs().sum() + a.sum()).backward();
            mine.Step();
            theirs.zero_grad();
            ((b - target).pow(3).abs().sum() + b.sum()).backward();
            theirs.step();
        }

        return (a.detach(), b.detach());
    }

    [Fact]
    public void AdamW_MatchesTorchAdamW()
    {
        var (ours, reference) = Compare(
            p => new AdamW([("w", p)], 0.05, 0.9, 0.95, 1e-8, weightDecay: 0.1),
            p => optim.AdamW([p], 0.05, 0.9, 0.95, 1e-8, weight_decay: 0.1));
        TensorAssert.Close(reference, ours, atol: 1e-12);
    }

    [Fact]
    public void SgdMomentum_MatchesTorchSgd()
    {
        var (ours, reference) = Compare(
            p => new Sgd([("w", p)], 0.01, momentum: 0.9, weightDecay: 0.01),
            p => optim.SGD([p], 0.01, momentum: 0.9, weight_decay: 0.01));
        TensorAssert.Close(reference, ours, atol: 1e-12);
    }

    [Fact]
    public void Adafactor_FirstStepOfAMatrix_IsTheFactoredNormalisedGradient()
    {
        // One step on W = 0 with gradient G: β₂₁ = 1 − 1^(−0.8) = 0, so R = row means of G², C = column
        // means, v̂ = R·Cᵀ / mean(R), update = G / √v̂, scaled down when its RMS exceeds 1.
        var w = new Parameter(torch.zeros(2, 2, dtype: ScalarType.Float64));
        using var optimizer = new Adafactor([("w", w)], learningRate: 0.5, eps: 0);
        w.grad = torch.tensor(new[,] { { 1.0, 2.0 }, { 3.0, 4.0 } });
        optimizer.Step();

        double[] r = [(1 + 4) / 2.0, (9 + 16) / 2.0], c = [(1 + 9) / 2.0, (4 + 16) / 2.0];
        var meanR = (r[0] + r[1]) / 2;
        double[,] g = { { 1, 2 }, { 3, 4 } };
        var u = new double[2, 2];
        double squares = 0;
        for (var i = 0; i < 2; i++)
            for (var j = 0; j < 2; j++)
            {
                u[i, j] = g[i, j] / Math.Sqrt(r[i] * c[j] / meanR);
                squares += u[i, j] * u[i, j];
            }

        var scale = Math.Max(1, Math.Sqrt(squares / 4));
        using var expected = torch.tensor(new[,] { { -0.5 * u[0, 0] / scale, -0.5 * u[0, 1] / scale }, { -0.5 * u[1, 0] / scale, -0.5 * u[1, 1] / scale } });
        TensorAssert.Close(expected, w, atol: 1e-12);
    }

    [Fact]
    public void ZeroGrad_KeepsDenseGradientsZeroed_AndDropsAnExpertsSoAnUnroutedExpertIsNotStepped()
    {
        var dense = new Parameter(torch.ones(3, dtype: ScalarType.Float64));
        var expert = new Parameter(torch.ones(3, dtype: ScalarType.Float64));
        using var optimizer = new AdamW([("model.layers.0.self_attn.q_proj.weight", dense), ("model.layers.0.mlp.experts.1.up_proj.weight", expert)], 0.1);
        (dense * 2 + expert).sum().backward();
        optimizer.Step();
        var kept = dense.grad!;
        optimizer.ZeroGrad();

        // The dense gradient is kept and zeroed where it lies (the tensor read before sees the zeros); the next backward adds into it.
        TensorAssert.Close(torch.zeros(3, dtype: ScalarType.Float64), kept, atol: 0);
        TensorAssert.Close(torch.zeros(3, dtype: ScalarType.Float64), dense.grad!, atol: 0);
        Assert.Null(expert.grad);
        var before = expert.detach().clone();
        (dense * 3).sum().backward();
        optimizer.Step();

        TensorAssert.Close(torch.full(3, 3.0, dtype: ScalarType.Float64), dense.grad!, atol: 0);
        // No token reached the expert this step: its weights and moments stay as they were.
        TensorAssert.Close(before, expert.detach(), atol: 0);
    }

    [Fact]
    public void SaveAndLoadState_ContinuesIdentically()
    {
        var p = new Parameter(torch.ones(3, dtype: ScalarType.Float64));
        var q = new Parameter(torch.ones(3, dtype: ScalarType.Float64));
        using var first = new AdamW([("p", p)], 0.1);
        for (var i = 0; i < 3; i++)
        {
            first.ZeroGrad();
            (p * p * torch.arange(3, dtype: ScalarType.Float64)).sum().backward();
            first.Step();
        }

        using var second = new AdamW([("p", q)], 0.1);
        using (torch.no_grad())
            q.copy_(p);
        second.LoadState(first.SaveState().ToDictionary(kv => kv.Key, kv => kv.Value));
        foreach (var (optimizer, parameter) in new[] { (first, p), (second, q) })
        {
            optimizer.ZeroGrad();
            (parameter * parameter * torch.arange(3, dtype: ScalarType.Float64)).sum().backward();
            optimizer.Step();
        }

        Assert.Equal(4, second.StepCount);
        TensorAssert.Equal(p.detach(), q.detach());
    }

    [Fact]
    public void Schedules_WarmupThenDecay_HandValues()
    {
        var cosine = new LearningRateSchedule(ScheduleKind.Cosine, 1e-3, TotalSteps: 110, WarmupSteps: 10);
        var linear = new LearningRateSchedule(ScheduleKind.Linear, 1e-3, 110, 10);
        var constant = new LearningRateSchedule(ScheduleKind.Constant, 1e-3, 110, 10);

        Assert.Equal(1e-4, cosine.At(1), 12);            // warmup 1/10
        Assert.Equal(1e-3, cosine.At(10), 12);           // peak
        Assert.Equal(0.5e-3, cosine.At(60), 12);         // half-way: ½(1 + cos π/2)
        Assert.Equal(0, cosine.At(110), 12);
        Assert.Equal(0.5e-3, linear.At(60), 12);
        Assert.Equal(1e-3, constant.At(100), 12);
        Assert.Equal(11, LearningRateSchedule.WarmupFromRatio(0.1, 101));
    }
}

public class MasterWeightTests
{
    [Fact]
    public void Bf16Parameter_AccumulatesUpdatesSmallerThanItsPrecision()
    {
        // bf16 spacing near 1.0 is 2⁻⁷ ≈ 0.0078: a 1e-4 step would round away every time without a master copy.
        var parameter = new TorchSharp.Modules.Parameter(torch.ones(4, dtype: ScalarType.BFloat16));
        using var optimizer = new Sgd([("w", parameter)], learningRate: 1e-4);
        for (var i = 0; i < 100; i++)
        {
            parameter.grad = torch.ones(4, dtype: ScalarType.BFloat16);
            optimizer.Step();
        }

        Assert.True(parameter.to_type(ScalarType.Float32)[0].item<float>() < 0.995f);
        var master = optimizer.SaveState().Single(kv => kv.Key == "master.w").Value;
        Assert.Equal(0.99, master[0].item<float>(), 4);
    }
}
