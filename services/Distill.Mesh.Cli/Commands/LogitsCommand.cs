using System.CommandLine;
using Distill.Mesh.Modeling.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill logits</c>: per-position log-probabilities (top-k or the full row), and
/// <c>distill nll</c>: per-token negative log-likelihood and its mean. Log-softmax is in float32.
/// </summary>
internal static class LogitsCommand
{
    public static Command Create()
    {
        var (model, ids, dtype, device) = CommonOptions();
        var topK = new Option<int>("--top-k") { Description = "ids and log-probs of the k best tokens per position", DefaultValueFactory = _ => 5 };
        var full = new Option<bool>("--full") { Description = "print the whole log-prob row of each position" };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var command = new Command("logits", "Log-probabilities of the next token at every position") { model, ids, dtype, device, topK, full, json };
        command.SetAction((parse, output) =>
        {
            using var logProbs = LogProbabilities(parse.GetValue(model)!, parse.GetValue(ids)!, parse.GetValue(dtype)!, parse.GetValue(device)!, out var tokenIds);
            var k = Math.Clamp(parse.GetValue(topK), 1, (int)logProbs.shape[1]);
            var (values, indices) = logProbs.topk(k, dim: -1);
            var positions = Enumerable.Range(0, tokenIds.Length).Select(t => new
            {
                Position = t,
                Id = tokenIds[t],
                TopIds = indices[t].data<long>().ToArray(),
                TopLogprobs = values[t].data<float>().ToArray(),
                Logprobs = parse.GetValue(full) ? logProbs[t].data<float>().ToArray() : null,
            }).ToList();

            if (parse.GetValue(json))
            {
                CommandRunner.WriteJson(output, new { Positions = positions, VocabSize = logProbs.shape[1] });
                return 0;
            }

            foreach (var p in positions)
                output.WriteLine($"{p.Position,4} id {p.Id,7} → {string.Join("  ", p.TopIds.Zip(p.TopLogprobs, (i, v) => $"{i}:{v:F4}"))}");
            return 0;
        });
        return command;
    }

    public static Command CreateNll()
    {
        var (model, ids, dtype, device) = CommonOptions();
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var command = new Command("nll", "Negative log-likelihood of each token given the ones before it") { model, ids, dtype, device, json };
        command.SetAction((parse, output) =>
        {
            using var logProbs = LogProbabilities(parse.GetValue(model)!, parse.GetValue(ids)!, parse.GetValue(dtype)!, parse.GetValue(device)!, out var tokenIds);
            if (tokenIds.Length < 2)
                throw new ArgumentException("--ids needs at least two tokens (the first one is only context)");
            var tokens = Enumerable.Range(1, tokenIds.Length - 1)
                .Select(t => new { Position = t, Id = tokenIds[t], Nll = -(double)logProbs[t - 1, tokenIds[t]].item<float>() }).ToList();
            var mean = tokens.Average(t => t.Nll);

            if (parse.GetValue(json))
            {
                CommandRunner.WriteJson(output, new { Tokens = tokens, MeanNll = mean, Perplexity = Math.Exp(mean) });
                return 0;
            }

            foreach (var t in tokens)
                output.WriteLine($"{t.Position,4} id {t.Id,7} nll {t.Nll:F4}");
            output.WriteLine($"mean nll {mean:F4}, perplexity {Math.Exp(mean):F3}");
            return 0;
        });
        return command;
    }

    private static (Option<string> Model, Option<string> Ids, Option<string> DType, Option<string> Device) CommonOptions() =>
        (new Option<string>("--model") { Description = "HF model folder", Required = true },
         new Option<string>("--ids") { Description = "token ids, e.g. 1,2,3", Required = true },
         new Option<string>("--dtype") { DefaultValueFactory = _ => "float32" },
         new Option<string>("--device") { Description = "cpu or cuda[:N]", DefaultValueFactory = _ => "cpu" });

    /// <summary>[T, vocab] float32 log-probabilities of the next token at each position.</summary>
    private static Tensor LogProbabilities(string folder, string idText, string dtype, string device, out int[] ids)
    {
        ids = CommandRunner.ParseIds(idText, "--ids");
        using var model = CausalLanguageModel.FromPretrained(folder, CommandRunner.ParseDType(dtype), CommandRunner.ParseDevice(device));
        var vocab = model.Config.VocabSize;
        if (ids.Length == 0 || ids.Any(i => i < 0 || i >= vocab))
            throw new ArgumentException($"--ids must be non-empty and every id in [0, {vocab})");
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var logits = model.Forward(torch.tensor(ids.Select(i => (long)i).ToArray(), device: model.Device).unsqueeze(0));
        return logits[0].to_type(ScalarType.Float32).log_softmax(-1).cpu().MoveToOuterDisposeScope();
    }
}
