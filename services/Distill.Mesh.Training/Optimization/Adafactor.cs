using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Optimization;

/// <summary>
/// Adafactor (Shazeer &amp; Stern, 2018) with an explicit learning rate, no first moment: the second
/// moment of a matrix is kept factored as row and column means (O(n + m) memory instead of O(nm)),
/// decay β₂ₜ = 1 − t^(−0.8), updates clipped to RMS ≤ d.
/// </summary>
public sealed class Adafactor(IEnumerable<(string, Parameter)> parameters, double learningRate, double eps = 1e-30, double clipThreshold = 1.0, double decayRate = -0.8, double weightDecay = 0.0)
    : TrainingOptimizer(parameters, learningRate)
{
    protected override void Update(string name, Tensor value, Tensor gradient)
    {
        var beta2 = 1 - Math.Pow(StepCount, decayRate);
        var squared = gradient.pow(2) + eps;
        Tensor update;
        if (value.dim() >= 2)
        {
            var rows = State($"exp_avg_sq_row.{name}", value, value.shape[..^1]);
            var columns = State($"exp_avg_sq_col.{name}", value, [.. value.shape[..^2], value.shape[^1]]);
            rows.mul_(beta2).add_(squared.mean([-1L]), alpha: 1 - beta2);
            columns.mul_(beta2).add_(squared.mean([-2L]), alpha: 1 - beta2);
            var rowFactor = (rows / rows.mean([-1L], keepdim: true)).rsqrt().unsqueeze(-1);
            var columnFactor = columns.rsqrt().unsqueeze(-2);
            update = gradient * rowFactor * columnFactor;
        }
        else
        {
            var v = State($"exp_avg_sq.{name}", value);
            v.mul_(beta2).add_(squared, alpha: 1 - beta2);
            update = gradient * v.rsqrt();
        }

        var rms = update.pow(2).mean().sqrt().to_type(ScalarType.Float64).item<double>();
        if (weightDecay != 0)
            value.mul_(1 - LearningRate * weightDecay);
        value.add_(update, alpha: -LearningRate / Math.Max(1.0, rms / clipThreshold));
    }
}
