using System.CommandLine;
using System.Text.Json;
using Distill.Mesh.Modeling.Tokenization;

namespace Distill.Mesh.Cli.Commands;

/// <summary><c>distill tokenize --tokenizer DIR --text "..." [--chat FILE.json]</c>.</summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var tokenizerPath = new Option<string>("--tokenizer") { Description = "folder or tokenizer.json / tokenizer.model", Required = true };
        var text = new Option<string?>("--text") { Description = "text to encode" };
        var chat = new Option<string?>("--chat") { Description = "JSON file with a list of {role, content} messages (or {\"messages\": [...]})" };
        var chatFormat = new Option<string?>("--chat-format") { Description = "chatml, llama3 or mistral (default: from the tokenizer)" };
        var generationPrompt = new Option<bool>("--add-generation-prompt") { Description = "end the chat with an assistant header" };
        var special = new Option<bool>("--add-special-tokens") { Description = "add BOS/EOS as the tokenizer does for a single sequence" };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var command = new Command("tokenize", "Encode text or a chat with a tokenizer") { tokenizerPath, text, chat, chatFormat, generationPrompt, special, json };
        command.SetAction((parse, output) =>
        {
            var tokenizer = TokenizerLoader.Load(parse.GetValue(tokenizerPath)!);
            IReadOnlyList<int> ids;
            IReadOnlyList<bool>? mask = null;
            if (parse.GetValue(chat) is { } chatFile)
            {
                var format = parse.GetValue(chatFormat) is { } name
                    ? ChatTemplates.Names.TryGetValue(name, out var f) ? f : throw new ArgumentException($"unknown chat format '{name}' (known: {string.Join(", ", ChatTemplates.Names.Keys)})")
                    : (ChatFormat?)null;
                var tokenized = ChatTemplates.Tokenize(tokenizer, ReadMessages(chatFile), format, parse.GetValue(generationPrompt));
                (ids, mask) = (tokenized.Ids, tokenized.AssistantMask);
            }
            else
            {
                ids = tokenizer.Encode(parse.GetValue(text) ?? throw new ArgumentException("give --text or --chat"), parse.GetValue(special));
            }

            var tokens = ids.Select(id => tokenizer.IdToToken(id)).ToList();
            if (parse.GetValue(json))
            {
                CommandRunner.WriteJson(output, new { Ids = ids, Tokens = tokens, AssistantMask = mask, Text = tokenizer.Decode(ids), TokenizerHash = tokenizer.Hash, VocabSize = tokenizer.VocabularySize });
                return 0;
            }

            output.WriteLine(string.Join(",", ids));
            for (var i = 0; i < ids.Count; i++)
                output.WriteLine($"{i,5} {ids[i],8} {(mask is null ? "" : mask[i] ? "A " : "  ")}{JsonSerializer.Serialize(tokens[i], CommandRunner.Json)}");
            output.WriteLine($"{ids.Count} tokens; tokenizer hash {tokenizer.Hash[..16]}…, vocab {tokenizer.VocabularySize}");
            return 0;
        });
        return command;
    }

    private static List<ChatMessage> ReadMessages(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var list = document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("messages", out var m) ? m : document.RootElement;
        if (list.ValueKind != JsonValueKind.Array)
            throw new ArgumentException($"{path}: expected a list of messages or an object with 'messages'");
        return list.EnumerateArray().Select((e, i) => new ChatMessage(
            e.TryGetProperty("role", out var r) ? r.GetString()! : throw new ArgumentException($"{path}: message {i} has no 'role'"),
            e.TryGetProperty("content", out var c) ? c.GetString()! : throw new ArgumentException($"{path}: message {i} has no 'content'"))).ToList();
    }
}
