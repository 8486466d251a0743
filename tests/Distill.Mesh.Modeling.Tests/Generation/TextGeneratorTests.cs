using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Generation;

public class TextGeneratorTests
{
    private static readonly int[] PromptA = [5, 17, 99, 3, 200, 41];
    private static readonly int[] PromptB = [7, 8];

    [Theory]
    [InlineData("llama")]
    [InlineData("mixtral")]
    public void Greedy_WithCache_EqualsArgmaxOfFullForwardEachStep(string family)
    {
        using var model = TinyModels.Create(family, seed: 21);

        var generated = TextGenerator.Generate(model, [PromptA], new GenerationOptions { Greedy = true, MaxNewTokens = 8 })[0];

        var sequence = PromptA.Select(i => (long)i).ToList();
        for (var step = 0; step < 8; step++)
        {
            using var logits = model.Forward(torch.tensor(sequence.ToArray()).unsqueeze(0));
            sequence.Add(logits[0, -1].argmax().item<long>());
        }

        Assert.Equal(sequence.Skip(PromptA.Length).Select(i => (int)i), generated.Tokens);
        Assert.Equal(StopReason.MaxNewTokens, generated.Reason);
    }

    [Fact]
    public void Greedy_LeftPaddedBatch_EqualsEachPromptAlone()
    {
        using var model = TinyModels.Create("llama", seed: 22);
        var options = new GenerationOptions { Greedy = true, MaxNewTokens = 6 };

        var batched = TextGenerator.Generate(model, [PromptA, PromptB], options);
        var aloneA = TextGenerator.Generate(model, [PromptA], options)[0];
        var aloneB = TextGenerator.Generate(model, [PromptB], options)[0];

        Assert.Equal(aloneA.Tokens, batched[0].Tokens);
        Assert.Equal(aloneB.Tokens, batched[1].Tokens);
    }

    [Fact]
    public void OnToken_HearsEachTokenAsChosen_CancellationStopsBetweenSteps()
    {
        using var model = TinyModels.Create("llama", seed: 24);
        var options = new GenerationOptions { Greedy = true, MaxNewTokens = 6 };
        var heard = new List<(int Prompt, int Token)>();

        var result = TextGenerator.Generate(model, [PromptA, PromptB], options, (b, token) => heard.Add((b, token)));

        Assert.Equal(result[0].Tokens, heard.Where(h => h.Prompt == 0).Select(h => h.Token));
        Assert.Equal(result[1].Tokens, heard.Where(h => h.Prompt == 1).Select(h => h.Token));

        using var cancellation = new CancellationTokenSource();
        var steps = 0;
        Assert.Throws<OperationCanceledException>(() => TextGenerator.Generate(model, [PromptA], options, (_, _) =>
        {
            if (++steps == 2)
                cancellation.Cancel();
        }, cancellation.Token));
        Assert.Equal(2, steps);
    }

    [Fact]
    public void Sampling_SameSeedRepeats_DifferentSeedDiffers()
    {
        using var model = TinyModels.Create("qwen2", seed: 23);
        var options = new GenerationOptions { Temperature = 5.0, MaxNewTokens = 12, Seed = 1 };

        var first = TextGenerator.Generate(model, [PromptA], options)[0].Tokens;
        var again = TextGenerator.Generate(model, [PromptA], options)[0].Tokens;
        var other = TextGenerator.Generate(model, [PromptA], options with { Seed = 2 })[0].Tokens;

        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public void Sampling_TopKOneOrTinyTopP_EqualsGreedy()
    {
        using var model = TinyModels.Create("mistral", seed: 24);
        var greedy = TextGenerator.Generate(model, [PromptA], new GenerationOptions { Greedy = true, MaxNewTokens = 6 })[0].Tokens;

        var topK = TextGenerator.Generate(model, [PromptA], new GenerationOptions { TopK = 1, Temperature = 3, MaxNewTokens = 6, Seed = 5 })[0].Tokens;
        var topP = TextGenerator.Generate(model, [PromptA], new GenerationOptions { TopP = 1e-6, Temperature = 3, MaxNewTokens = 6, Seed = 6 })[0].Tokens;

        Assert.Equal(greedy, topK);
        Assert.Equal(greedy, topP);
    }

    [Fact]
    public void StopToken_EndsSequenceAndIsKept()
    {
        using var model = TinyModels.Create("llama", seed: 25);
        var free = TextGenerator.Generate(model, [PromptA], new GenerationOptions { Greedy = true, MaxNewTokens = 6 })[0].Tokens;

        var stopped = TextGenerator.Generate(model, [PromptA, PromptB],
            new GenerationOptions { Greedy = true, MaxNewTokens = 6, StopTokenIds = new HashSet<int> { free[2] } });

        var expectedLength = free.ToList().IndexOf(free[2]) + 1;
        Assert.Equal(free.Take(expectedLength), stopped[0].Tokens);
        Assert.Equal(StopReason.StopToken, stopped[0].Reason);
    }

    [Fact]
    public void Filter_TopKAndTopP_KeepTheExpectedTokens()
    {
        // probabilities 0.5, 0.25, 0.15, 0.1 (as log-probs)
        using var scores = torch.tensor(new[] { 0.5, 0.25, 0.15, 0.1 }).log().unsqueeze(0);

        using var topK = TokenSampler.Filter(scores, topK: 2, topP: 1.0);
        using var topP = TokenSampler.Filter(scores, topK: 0, topP: 0.7);
        using var topPExact = TokenSampler.Filter(scores, topK: 0, topP: 0.75);

        Assert.Equal(new[] { true, true, false, false }, topK.isfinite()[0].data<bool>().ToArray());
        Assert.Equal(new[] { true, true, false, false }, topP.isfinite()[0].data<bool>().ToArray());
        // 0.5 + 0.25 reaches 0.75: the third token is dropped.
        Assert.Equal(new[] { true, true, false, false }, topPExact.isfinite()[0].data<bool>().ToArray());
    }

    [Fact]
    public void Generate_InvalidRequests_AreRejected()
    {
        using var model = TinyModels.Create("llama");

        Assert.Throws<ArgumentException>(() => TextGenerator.Generate(model, [[1, 9999]], new GenerationOptions { Greedy = true }));
        Assert.Throws<ArgumentException>(() => TextGenerator.Generate(model, [[1]], new GenerationOptions { Temperature = 0 }));
        Assert.Throws<ArgumentException>(() => TextGenerator.Generate(model, [[1]], new GenerationOptions { TopP = 1.5 }));
        Assert.Throws<ArgumentException>(() => TextGenerator.Generate(model, [Array.Empty<int>()], new GenerationOptions { Greedy = true }));
    }
}
