using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Evaluation;

/// <summary>One multiple-choice item: a context, its candidate continuations, the right one's index.</summary>
public sealed record ChoiceItem(string Context, IReadOnlyList<string> Choices, int Gold);

/// <summary>
/// Multiple-choice accuracy by log-likelihood, as lm-evaluation-harness scores it: each choice's
/// continuation tokens are scored after the context (encoded separately, with BOS); the most
/// likely choice is the answer. "acc" uses the summed log-likelihood, "acc_norm" divides it by the
/// continuation's length in bytes.
/// </summary>
public static class MultipleChoice
{
    public sealed record Result(double Accuracy, double NormalizedAccuracy, int Items);

    /// <summary>Log-likelihood of each continuation given the context.</summary>
    public static double[] Score(CausalLanguageModel model, TextTokenizer tokenizer, string context, IReadOnlyList<string> continuations)
    {
        using var noGrad = torch.no_grad();
        var prefix = tokenizer.Encode(context, addSpecialTokens: true);
        var scores = new double[continuations.Count];
        for (var c = 0; c < continuations.Count; c++)
        {
            using var scope = torch.NewDisposeScope();
            var continuation = tokenizer.Encode(continuations[c]);
            if (continuation.Count == 0)
                throw new ArgumentException($"choice {c} encodes to no tokens");
            var ids = prefix.Concat(continuation).Select(i => (long)i).ToArray();
            var logits = model.Forward(torch.tensor(ids, device: model.Device).unsqueeze(0))[0].to_type(ScalarType.Float32).log_softmax(-1);
            double total = 0;
            for (var t = 0; t < continuation.Count; t++)
                total += logits[prefix.Count + t - 1, continuation[t]].item<float>();
            scores[c] = total;
        }

        return scores;
    }

    public static Result Evaluate(CausalLanguageModel model, TextTokenizer tokenizer, IReadOnlyList<ChoiceItem> items)
    {
        if (items.Count == 0)
            throw new ArgumentException("no multiple-choice items");
        int right = 0, rightNorm = 0;
        foreach (var item in items)
        {
            if (item.Gold < 0 || item.Gold >= item.Choices.Count)
                throw new ArgumentException($"gold index {item.Gold} is outside the {item.Choices.Count} choices of '{item.Context}'");
            var scores = Score(model, tokenizer, item.Context, item.Choices);
            var normalized = scores.Select((s, i) => s / Math.Max(1, System.Text.Encoding.UTF8.GetByteCount(item.Choices[i]))).ToArray();
            right += Array.IndexOf(scores, scores.Max()) == item.Gold ? 1 : 0;
            rightNorm += Array.IndexOf(normalized, normalized.Max()) == item.Gold ? 1 : 0;
        }

        return new Result((double)right / items.Count, (double)rightNorm / items.Count, items.Count);
    }
}
