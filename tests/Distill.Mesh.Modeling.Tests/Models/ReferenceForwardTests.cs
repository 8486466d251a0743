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
    [InlineData("qwen3")]   // q/k norms per head, head_dim 32 ≠ hidden/heads, window 6 on layer 1 only, tied head
    [InlineData("qwen2_moe")] // q/k/v biases, unnormalised top-2 of 4, shared expert with sigmoid gate, layer 1 dense
    [InlineData("qwen3_moe")] // q/k norms, normalised top-2, layer 0 dense (decoder_sparse_step 2)
    [InlineData("gemma2")]  // ×√hidden, (1 + w) sandwich norms, GeGLU, scale 24^-½, scores capped at 2 and logits at 3, layer 0 sliding
    [InlineData("gemma3_text")] // ×√hidden, (1 + w) norms, GeGLU, scale 24^-½, layers 0-1 sliding with base 10^4, layer 2 global
    [InlineData("phi3")]    // fused qkv_proj and gate_up_proj, rotary on half of each head, window 6, GQA 4:2
    public void Forward_EqualsIndependentFloat64Reference(string family)
    {
        using var model = TinyModels.Create(family, seed: 50);
        // Norm scales start at 1; spread them so that a scale applied wrongly (or not at all) shows.
        using (torch.no_grad())
        {
            using var generator = new Generator(51);
            foreach (var (name, parameter) in model.named_parameters().Where(p => p.name.EndsWith("norm.weight", StringComparison.Ordinal)))
                parameter.add_(torch.randn(parameter.shape, generator: generator) * 0.3);
        }

        int[] ids = [3, 141, 59, 26, 53, 58, 97, 93, 23, 84];
        var reference = new ReferenceDecoder(model).Forward(ids);

        using var logits = model.Forward(torch.tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0))[0];

        using var expected = torch.tensor(reference.SelectMany(r => r).ToArray(), dtype: ScalarType.Float64).reshape(ids.Length, model.Config.VocabSize);
        TensorAssert.Close(expected, logits, atol: 2e-4, rtol: 1e-4);
        Assert.True(expected.std().item<double>() > 0.1, "logits should vary enough for the comparison to mean something");
    }
}
