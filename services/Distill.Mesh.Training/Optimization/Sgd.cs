using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Optimization;

/// <summary>SGD with optional momentum (PyTorch's: b ← μ·b + g, first step b = g) and L2 weight decay.</summary>
public sealed class Sgd(IEnumerable<(string, Parameter)> parameters, double learningRate, double momentum = 0.0, double weightDecay = 0.0)
    : TrainingOptimizer(parameters, learningRate)
{
    protected override void Update(string name, Tensor value, Tensor gradient)
    {
        var g = weightDecay > 0 ? gradient + weightDecay * value : gradient;
        if (momentum > 0)
        {
            var buffer = State($"momentum.{name}", value);
            if (StepCount == 1)
                buffer.copy_(g);
            else
                buffer.mul_(momentum).add_(g);
            g = buffer;
        }

        value.add_(g, alpha: -LearningRate);
    }
}
