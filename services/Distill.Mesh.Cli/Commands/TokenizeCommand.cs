using System.CommandLine;
using System.Text.Json;
using Distill.Mesh.Modeling.Tokenization;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill tokenize --tokenizer DIR --text "..." | --chat FILE.json [--chat-format NAME]</c>. A chat
/// goes through the tokenizer's own Jinja chat template unless a built-in format is named (or the
/// tokenizer has no template).
/// </summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var tokenizerPath = new Option<string>("--tokenizer") { Description = "folder or tokenizer.json / tokenizer.model", Required = true };
        var text = new Option<string?>("--text") { Description = "text to encode" };
        var chat = new Option<string?>("--chat") { Description = "JSON file: a list of messages, or {\"messages\": [...], \"add_generation_prompt\", \"tools\", \"now\", other template variables}" };
        var chatFormat = new Option<string?>("--chat-format") { Description = "use a built-in layout instead of the tokenizer's template: chatml, llama3 or mistral" };
        var generationPrompt = new Option<bool>("--add-generation-prompt") { Description = "end the chat with an assistant header" };
        var special = new Option<bool>("--add-special-tokens") { Description = "add BOS/EOS as the tokenizer does for a single sequence" };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var command = new Command("tokenize", "Encode text or a chat with a tokenizer") { tokenizerPath, text, chat, chatFormat, generationPrompt, special, json };
        command.SetAction((parse, output) =>
        {
            var tokenizer = TokenizerLoader.Load(parse.GetValue(tokenizerPath)!);
            IReadOnlyList<int> ids;
            TokenizedChat? tokenized = null;
            if (parse.GetValue(chat) is { } chatFile)
            {
                var request = ChatFile.Read(chatFile);
                if (parse.GetValue(generationPrompt))
                    request = request with { AddGenerationPrompt = true };
                var layout = parse.GetValue(chatFormat) is not null || tokenizer.ChatTemplate is null;
                if (layout && (request.Tools is not null || request.Variables.Count > 0))
                    throw new ArgumentException($"{chatFile}: tools and template variables ({string.Join(", ", request.Variables.Keys.Prepend(request.Tools is null ? null : "tools").OfType<string>())}) need the tokenizer's own chat template, not a built-in layout");
                tokenized = layout
                    ? ChatTemplates.Tokenize(tokenizer, ChatFile.PlainMessages(request, chatFile), Layout(parse.GetValue(chatFormat), tokenizer), request.AddGenerationPrompt)
                    : ChatTemplates.Tokenize(tokenizer, request);
                ids = tokenized.Ids;
            }
            else
            {
                ids = tokenizer.Encode(parse.GetValue(text) ?? throw new ArgumentException("give --text or --chat"), parse.GetValue(special));
            }

            var mask = tokenized?.AssistantMask;
            var tokens = ids.Select(id => tokenizer.IdToToken(id)).ToList();
            if (parse.GetValue(json))
            {
                CommandRunner.WriteJson(output, new
                {
                    Ids = ids, Tokens = tokens, AssistantMask = mask, Text = tokenizer.Decode(ids), Rendered = tokenized?.Rendered,
                    MaskSource = tokenized?.MaskSource, TokenizerHash = tokenizer.Hash, VocabSize = tokenizer.VocabularySize,
                });
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

    private static ChatFormat Layout(string? name, TextTokenizer tokenizer) => name is null
        ? ChatTemplates.Detect(tokenizer)
        : ChatTemplates.Names.TryGetValue(name, out var format) ? format : throw new ArgumentException($"unknown chat format '{name}' (known: {string.Join(", ", ChatTemplates.Names.Keys)})");
}
