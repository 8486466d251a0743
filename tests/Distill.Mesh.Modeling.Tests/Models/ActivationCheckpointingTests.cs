using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Models;

/// <summary>Tests that seed torch's global RNG and rely on its next draws (dropout masks) run alone.</summary>
[CollectionDefinition(nameof(GlobalRandomState), DisableParallelization = true)]
public sealed class GlobalRandomState;

[Collection(nameof(GlobalRandomState))]
public class ActivationCheckpointingTests
{
    [Fact]
    public void Checkpointing_GivesTheSameLossAndGradients_WithDropout()
    {
        using var ids = TinyModels.RandomIds(2, 10, 262, seed: 3);

        (float Loss, Dictionary<string, Tensor> Grads) Run(bool checkpoint)
        {
            var model = TinyModels.Create("llama", seed: 4);
            var config = LoraConfig.For(4, 8, "all-linear");
            config.LoraDropout = 0.3;
            LoraAdapter.Attach(model, config, seed: 5);
            using (torch.no_grad())
            {
                using var generator = new Generator(6);
                foreach (var (_, projection) in LoraAdapter.Adapted(model))
                    projection.Lora!.B.weight!.normal_(0, 0.1, generator);
            }

            model.train();
            model.Body.ActivationCheckpointing = checkpoint;
            torch.manual_seed(77); // the same dropout masks for both runs
            var logits = model.Forward(ids);
            var loss = nn.functional.cross_entropy(logits.reshape(-1, 262), ids.reshape(-1));
            loss.backward();
            return (loss.item<float>(), model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone()));
        }

        var plain = Run(checkpoint: false);
        var recomputed = Run(checkpoint: true);

        Assert.Equal(plain.Loss, recomputed.Loss);
        Assert.Equal(plain.Grads.Keys.Order(), recomputed.Grads.Keys.Order());
        Assert.NotEmpty(plain.Grads);
        foreach (var (name, grad) in plain.Grads)
            TensorAssert.Close(grad, recomputed.Grads[name], atol: 1e-6, what: name);
    }
}
