using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Optimization;

/// <summary>Adam with decoupled weight decay (PyTorch's AdamW): p ← p − lr·(wd·p + m̂ / (√v̂ + ε)).</summary>
public sealed class AdamW(IEnumerable<(string, Parameter)> parameters, double learningRate, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.0)
    : TrainingOptimizer(parameters, learningRate)
{
    protected override void Update(string name, Tensor value, Tensor gradient)
    {
        var m = State($"exp_avg.{name}", value);
        var v = State($"exp_avg_sq.{name}", value);
        m.mul_(beta1).add_(gradient, alpha: 1 - beta1);
        v.mul_(beta2).addcmul_(gradient, gradient, value: 1 - beta2);
        var correction1 = 1 - Math.Pow(beta1, StepCount);
        var correction2 = 1 - Math.Pow(beta2, StepCount);
        // One temporary (the denominator), as PyTorch's single-tensor AdamW: √v / √(1 − β₂ᵗ) + ε.
        using var denominator = v.sqrt();
        denominator.div_(Math.Sqrt(correction2)).add_(eps);
        if (weightDecay != 0)
            value.mul_(1 - LearningRate * weightDecay);
        value.addcdiv_(m, denominator, value: -LearningRate / correction1);
    }
}
