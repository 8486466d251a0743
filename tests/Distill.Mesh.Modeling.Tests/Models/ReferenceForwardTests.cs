using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Models;

public class ReferenceForwardTests
{
    [Theory]
    [InlineData("llama")]   // Llama 3 rope scaling, untied head, GQA 4:2
    [InlineData("qwen2")]   // q/k/v biases, tied head, GQA 4:1
    [InlineData("mistral")] // explicit head_dim 32 ≠ hidden/heads, sliding window 6 over 10 tokens
    [InlineData("mixtral")] // routed experts
    public void Forward_EqualsIndependentFloat64Reference(string family)
    {
        using var model = TinyModels.Create(family, seed: 50);
        int[] ids = [3, 141, 59, 26, 53, 58, 97, 93, 23, 84];
        var reference = new ReferenceDecoder(model).Forward(ids);

        using var logits = model.Forward(torch.tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0))[0];

        using var expected = torch.tensor(reference.SelectMany(r => r).ToArray(), dtype: ScalarType.Float64).reshape(ids.Length, model.Config.VocabSize);
        TensorAssert.Close(expected, logits, atol: 2e-4, rtol: 1e-4);
        Assert.True(expected.std().item<double>() > 0.1, "logits should vary enough for the comparison to mean something");
    }
}
