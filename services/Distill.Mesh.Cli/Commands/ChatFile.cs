using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// The <c>--chat FILE.json</c> of <c>distill tokenize</c>: a list of messages, or an object with
/// <c>messages</c>, optional <c>add_generation_prompt</c>, <c>tools</c> and <c>now</c> (the clock
/// strftime_now reads, ISO 8601), every other key being a template variable (enable_thinking, ...).
/// </summary>
internal static class ChatFile
{
    public static ChatRequest Read(string path)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new FormatException($"{path}: not valid JSON ({e.Message})", e);
        }

        var messages = root switch
        {
            JsonArray list => list,
            JsonObject obj when obj["messages"] is JsonArray list => list,
            _ => throw new FormatException($"{path}: expected a list of messages or an object with a 'messages' list"),
        };
        if (messages.Count == 0)
            throw new FormatException($"{path}: the conversation has no messages");
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i] is not JsonObject message || message["role"] is not JsonValue role || role.GetValueKind() != JsonValueKind.String)
                throw new FormatException($"{path}: message {i} must be an object with a string 'role'");
        }

        var request = new ChatRequest((JsonArray)messages.DeepClone());
        if (root is not JsonObject fields)
            return request;
        var variables = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        foreach (var (key, value) in fields)
        {
            switch (key)
            {
                case "messages":
                    break;
                case "add_generation_prompt":
                    request = request with { AddGenerationPrompt = value?.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? value.GetValue<bool>() : throw new FormatException($"{path}: 'add_generation_prompt' must be true or false") };
                    break;
                case "tools":
                    request = request with { Tools = value switch { null => null, JsonArray tools => (JsonArray)tools.DeepClone(), _ => throw new FormatException($"{path}: 'tools' must be a list of tool schemas") } };
                    break;
                case "now":
                    request = request with { Now = ParseNow(value, path) };
                    break;
                case "documents":
                    throw new FormatException($"{path}: 'documents' is not supported");
                default:
                    variables[key] = value?.DeepClone();
                    break;
            }
        }

        return request with { Variables = variables };
    }

    private static DateTime ParseNow(JsonNode? value, string path) =>
        value is JsonValue v && v.GetValueKind() == JsonValueKind.String
        && DateTime.TryParse(v.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.AllowWhiteSpaces, out var now)
            ? now
            : throw new FormatException($"{path}: 'now' must be a date and time such as \"2025-03-14T15:09:26\"");

    /// <summary>The messages as plain role/content pairs, for the built-in layouts.</summary>
    public static List<ChatMessage> PlainMessages(ChatRequest request, string path) =>
        request.Messages.Select((m, i) => new ChatMessage(
            m!["role"]!.GetValue<string>(),
            m["content"] is JsonValue c && c.GetValueKind() == JsonValueKind.String ? c.GetValue<string>()
                : throw new FormatException($"{path}: message {i} needs a string 'content' for a built-in chat format"))).ToList();
}
