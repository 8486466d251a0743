using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Training.Configuration;
using Distill.Mesh.Training.Datasets;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// Replaces examples' responses with a model's own completions of their prompts: the teacher's
/// for sequence-level KD, the student's for on-policy GKD. The new tokens are trained on.
/// </summary>
public static class Completions
{
    public static List<TokenizedExample> Generate(CausalLanguageModel model, IReadOnlyList<TokenizedExample> examples, GenerationSettings settings, IReadOnlySet<int> stopTokens, int padTokenId, long seed, int maxLength)
    {
        var wasTraining = model.training;
        model.eval();
        try
        {
            var prompts = examples.Select(e => (IReadOnlyList<int>)e.InputIds.Take(e.PromptLength).ToArray()).ToList();
            var options = new GenerationOptions
            {
                Greedy = settings.Greedy,
                Temperature = settings.Temperature,
                TopP = settings.TopP,
                MaxNewTokens = Math.Max(1, Math.Min(settings.MaxNewTokens, maxLength - prompts.Min(p => p.Count))),
                Seed = seed,
                StopTokenIds = stopTokens,
                PadTokenId = padTokenId,
            };
            var generated = TextGenerator.Generate(model, prompts, options);
            return prompts.Zip(generated, (prompt, completion) =>
            {
                var ids = prompt.Concat(completion.Tokens).Take(maxLength).ToArray();
                var labels = ids.Select((id, i) => i < prompt.Count ? TokenizedExample.IgnoreIndex : id).ToArray();
                return new TokenizedExample(ids, labels);
            }).ToList();
        }
        finally
        {
            if (wasTraining)
                model.train();
        }
    }
}
