using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Datasets;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// Replaces examples' responses with a model's own completions of their prompts: the teacher's
/// for sequence-level KD, the student's for on-policy GKD. The new tokens are trained on.
/// </summary>
public static class Completions
{
    /// <summary>The student's (or an in-process model's) completions, batched.</summary>
    public static List<TokenizedExample> Generate(CausalLanguageModel model, IReadOnlyList<TokenizedExample> examples, GenerationSettings settings, IReadOnlySet<int> stopTokens, int padTokenId, long seed, int maxLength)
    {
        var wasTraining = model.training;
        model.eval();
        try
        {
            var prompts = examples.Select(e => (IReadOnlyList<int>)e.InputIds.Take(e.PromptLength).ToArray()).ToList();
            var options = Options(settings, prompts, padTokenId, seed, maxLength) with { StopTokenIds = stopTokens };
            return Join(prompts, TextGenerator.Generate(model, prompts, options).Select(g => g.Tokens).ToList(), maxLength);
        }
        finally
        {
            if (wasTraining)
                model.train();
        }
    }

    /// <summary>Generation options for these prompts: the run's settings, capped so every prompt plus completion fits max_length.</summary>
    public static GenerationOptions Options(GenerationSettings settings, IReadOnlyList<IReadOnlyList<int>> prompts, int padTokenId, long seed, int maxLength) => new()
    {
        Greedy = settings.Greedy,
        Temperature = settings.Temperature,
        TopP = settings.TopP,
        MaxNewTokens = Math.Max(1, Math.Min(settings.MaxNewTokens, maxLength - prompts.Min(p => p.Count))),
        Seed = seed,
        PadTokenId = padTokenId,
    };

    /// <summary>Prompt + completion examples, trained on the completion only, cut at max_length.</summary>
    public static List<TokenizedExample> Join(IReadOnlyList<IReadOnlyList<int>> prompts, IReadOnlyList<IReadOnlyList<int>> completions, int maxLength) =>
        prompts.Zip(completions, (prompt, completion) =>
        {
            var ids = prompt.Concat(completion).Take(maxLength).ToArray();
            var labels = ids.Select((id, i) => i < prompt.Count ? TokenizedExample.IgnoreIndex : id).ToArray();
            return new TokenizedExample(ids, labels);
        }).ToList();
}
