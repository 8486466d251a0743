using System.CommandLine;
using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tokenization;

namespace Distill.Mesh.Cli.Commands;

/// <summary><c>distill generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3)</c>: prints ids and text.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "HF model folder", Required = true };
        var prompt = new Option<string?>("--prompt") { Description = "prompt text (encoded with the model's tokenizer, BOS as it specifies)" };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "prompt token ids, e.g. 1,2,3" };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => 32 };
        var greedy = new Option<bool>("--greedy") { Description = "take the most likely token each step" };
        var temperature = new Option<double>("--temperature") { DefaultValueFactory = _ => 1.0 };
        var topP = new Option<double>("--top-p") { DefaultValueFactory = _ => 1.0 };
        var topK = new Option<int>("--top-k") { DefaultValueFactory = _ => 0 };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 0 };
        var dtype = new Option<string>("--dtype") { DefaultValueFactory = _ => "float32" };
        var device = new Option<string>("--device") { Description = "cpu or cuda[:N]", DefaultValueFactory = _ => "cpu" };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var command = new Command("generate", "Generate a continuation with a model") { model, prompt, promptIds, maxNew, greedy, temperature, topP, topK, seed, dtype, device, json };
        command.SetAction((parse, output) =>
        {
            var folder = parse.GetValue(model)!;
            using var lm = CausalLanguageModel.FromPretrained(folder, CommandRunner.ParseDType(parse.GetValue(dtype)!), CommandRunner.ParseDevice(parse.GetValue(device)!));
            var tokenizer = HasTokenizer(folder) ? TokenizerLoader.Load(folder) : null;
            var ids = parse.GetValue(promptIds) is { } idText
                ? CommandRunner.ParseIds(idText, "--prompt-ids")
                : parse.GetValue(prompt) is { } text
                    ? (tokenizer ?? throw new ArgumentException($"{folder} has no tokenizer; pass --prompt-ids")).Encode(text, addSpecialTokens: true).ToArray()
                    : throw new ArgumentException("give --prompt or --prompt-ids");

            var defaults = GenerationConfig.Load(folder);
            var stop = defaults.StopTokens(lm.Config).ToHashSet();
            if (tokenizer?.EosTokenId is { } eos)
                stop.Add(eos);
            var options = new GenerationOptions
            {
                MaxNewTokens = parse.GetValue(maxNew),
                Greedy = parse.GetValue(greedy),
                Temperature = parse.GetValue(temperature),
                TopP = parse.GetValue(topP),
                TopK = parse.GetValue(topK),
                Seed = parse.GetValue(seed),
                StopTokenIds = stop,
                PadTokenId = defaults.PadTokenId ?? tokenizer?.PadTokenId ?? 0,
            };
            var result = TextGenerator.Generate(lm, [ids], options)[0];
            var generatedText = tokenizer?.Decode(result.Tokens, skipSpecialTokens: true);

            if (parse.GetValue(json))
            {
                CommandRunner.WriteJson(output, new { PromptIds = ids, Ids = result.Tokens, Text = generatedText, StopReason = result.Reason.ToString() });
                return 0;
            }

            output.WriteLine($"ids: {string.Join(",", result.Tokens)}");
            if (generatedText is not null)
                output.WriteLine($"text: {generatedText}");
            output.WriteLine($"stop: {result.Reason}");
            return 0;
        });
        return command;
    }

    public static bool HasTokenizer(string folder) =>
        File.Exists(Path.Combine(folder, "tokenizer.json")) || File.Exists(Path.Combine(folder, "tokenizer.model"));
}
