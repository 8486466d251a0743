using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Modeling.Tests.Tokenization.Templates;

/// <summary>
/// A byte-level tokenizer (one token per byte) whose special tokens are the control tokens a
/// family's template writes, beside that family's tokenizer_config.json: masks can then be checked
/// for templates whose real tokenizer.json is not in shared data.
/// </summary>
internal static partial class FamilyTokenizer
{
    public static TextTokenizer Create(TempFolder folder, string family)
    {
        var path = folder.Combine(family);
        ByteTokenizerBuilder.Write(path);
        var configFile = SharedData.PathOf("chat-templates", family, "tokenizer_config.json");
        File.Copy(configFile, Path.Combine(path, "tokenizer_config.json"), overwrite: true);
        var template = JsonNode.Parse(File.ReadAllText(configFile))!["chat_template"]!.GetValue<string>();
        var tokenizer = JsonNode.Parse(File.ReadAllText(Path.Combine(path, "tokenizer.json")))!;
        var added = tokenizer["added_tokens"]!.AsArray();
        var next = 256 + ByteTokenizerBuilder.SpecialTokens.Length;
        // Phi writes its role tokens as '<|' + role + '|>', which the pattern cannot see.
        string[] roles = ["<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"];
        foreach (var token in ControlToken().Matches(template).Select(m => m.Value).Concat(roles).Distinct().Except(ByteTokenizerBuilder.SpecialTokens))
        {
            added.Add(new JsonObject
            {
                ["id"] = next++, ["content"] = token, ["single_word"] = false, ["lstrip"] = false,
                ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            });
        }

        File.WriteAllText(Path.Combine(path, "tokenizer.json"), tokenizer.ToJsonString());
        return TokenizerLoader.Load(path);
    }

    [GeneratedRegex(@"<\|[^|<>\s]+\|>|<｜[^｜]+｜>|</?s>|<(?:bos|eos|start_of_turn|end_of_turn|start_of_image)>|\[/?[A-Z_]+\]")]
    private static partial Regex ControlToken();
}
