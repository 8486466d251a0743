using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization;

namespace Distill.Mesh.Training.Datasets;

/// <summary>
/// Turns dataset rows into tokenized examples: chat, ShareGPT and Alpaca rows through the
/// tokenizer's chat template or a built-in layout (loss on the assistant's tokens), prompt/completion as plain text
/// (loss on the completion and EOS), text rows whole (loss on everything).
/// </summary>
public sealed class ExampleBuilder
{
    private static readonly IReadOnlyDictionary<string, string> ShareGptRoles = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["system"] = "system",
        ["human"] = "user",
        ["user"] = "user",
        ["gpt"] = "assistant",
        ["assistant"] = "assistant",
        ["function_call"] = "assistant",
        ["observation"] = "tool",
        ["tool"] = "tool",
    };

    private readonly TextTokenizer _tokenizer;
    private readonly ExampleOptions _options;

    public ExampleBuilder(TextTokenizer tokenizer, DatasetLayout layout, ExampleOptions options)
    {
        if (options.MaxLength < 2)
            throw new ArgumentException($"max_length must be at least 2 (got {options.MaxLength})");
        _tokenizer = tokenizer;
        Layout = layout;
        _options = options;
    }

    public DatasetLayout Layout { get; }

    /// <summary>Tokenizes one row; throws <see cref="DatasetFormatException"/> naming the row when it is malformed.</summary>
    public TokenizedExample Build(DatasetRecord record)
    {
        try
        {
            var (ids, trained) = Layout switch
            {
                DatasetLayout.Chat => Chat(record.Fields["messages"] as JsonArray ?? throw Bad("'messages' must be a list"), "role", "content", null),
                DatasetLayout.ShareGpt => Chat(record.Fields["conversations"] as JsonArray ?? throw Bad("'conversations' must be a list"), "from", "value", ShareGptRoles),
                DatasetLayout.Alpaca => Chat(Alpaca(record.Fields), "role", "content", null),
                DatasetLayout.PromptCompletion => PromptCompletion(Text(record.Fields, "prompt"), Text(record.Fields, "completion")),
                DatasetLayout.Text => PlainText(Text(record.Fields, "text")),
                _ => throw new ArgumentOutOfRangeException(nameof(record)),
            };
            var length = Math.Min(ids.Count, _options.MaxLength);
            var labels = new long[length];
            for (var i = 0; i < length; i++)
                labels[i] = trained[i] || _options.TrainOnInputs ? ids[i] : TokenizedExample.IgnoreIndex;
            return new TokenizedExample(ids.Take(length).ToArray(), labels);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException or TokenizerFormatException or Modeling.Tokenization.Templates.TemplateException)
        {
            throw new DatasetFormatException($"{record.Source}: {record.Location}: {e.Message}", e);
        }
    }

    private (IReadOnlyList<int> Ids, IReadOnlyList<bool> Trained) Chat(JsonArray turns, string roleKey, string contentKey, IReadOnlyDictionary<string, string>? roleMap)
    {
        var messages = new List<ChatMessage>();
        for (var i = 0; i < turns.Count; i++)
        {
            if (turns[i] is not JsonObject turn)
                throw Bad($"turn {i} is not an object");
            var role = Text(turn, roleKey);
            if (roleMap is not null)
                role = roleMap.TryGetValue(role, out var mapped) ? mapped : throw Bad($"turn {i}: unknown speaker '{role}' (known: {string.Join(", ", roleMap.Keys)})");
            messages.Add(new ChatMessage(role, Text(turn, contentKey)));
        }

        if (messages.Count == 0)
            throw Bad("the conversation is empty");
        // The tokenizer's own chat template unless a built-in layout is configured (or it has none).
        var chat = ChatTemplates.Tokenize(_tokenizer, messages, _options.ChatFormat);
        return (chat.Ids, chat.AssistantMask);
    }

    private static JsonArray Alpaca(JsonObject fields)
    {
        var instruction = Text(fields, "instruction");
        var input = fields["input"]?.GetValue<string>();
        var output = fields.ContainsKey("output") ? Text(fields, "output") : fields.ContainsKey("response") ? Text(fields, "response") : throw Bad("missing 'output' (or 'response')");
        var user = string.IsNullOrWhiteSpace(input) ? instruction : $"{instruction}\n\n{input}";
        return [new JsonObject { ["role"] = "user", ["content"] = user }, new JsonObject { ["role"] = "assistant", ["content"] = output }];
    }

    private (IReadOnlyList<int>, IReadOnlyList<bool>) PromptCompletion(string prompt, string completion)
    {
        var promptIds = _tokenizer.Encode(prompt, addSpecialTokens: true);
        var completionIds = _tokenizer.Encode(completion).Concat(Eos()).ToList();
        return (promptIds.Concat(completionIds).ToList(), promptIds.Select(_ => false).Concat(completionIds.Select(_ => true)).ToList());
    }

    private (IReadOnlyList<int>, IReadOnlyList<bool>) PlainText(string text)
    {
        var ids = _tokenizer.Encode(text, addSpecialTokens: true).Concat(Eos()).ToList();
        return (ids, ids.Select(_ => true).ToList());
    }

    private IEnumerable<int> Eos() => _tokenizer.EosTokenId is { } eos ? [eos] : [];

    private static string Text(JsonObject fields, string key) => fields[key] switch
    {
        JsonValue value when value.TryGetValue<string>(out var text) => text,
        null => throw Bad($"missing '{key}'"),
        _ => throw Bad($"'{key}' must be a string"),
    };

    private static FormatException Bad(string message) => new(message);
}
