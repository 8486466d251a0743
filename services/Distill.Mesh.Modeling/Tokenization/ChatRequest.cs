using System.Text.Json.Nodes;

namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>What a chat template renders: the conversation, whether to open an assistant turn, tools and further variables.</summary>
/// <param name="Messages">The messages as JSON objects (role, content and whatever else the template reads: tool_calls, reasoning_content, ...).</param>
public sealed record ChatRequest(JsonArray Messages)
{
    /// <summary>End with the header of a new assistant turn.</summary>
    public bool AddGenerationPrompt { get; init; }

    /// <summary>Tool schemas, or null (the template then sees <c>tools</c> as None).</summary>
    public JsonArray? Tools { get; init; }

    /// <summary>Further template variables (enable_thinking, date_string, ...); they override the special tokens.</summary>
    public IReadOnlyDictionary<string, JsonNode?> Variables { get; init; } = new Dictionary<string, JsonNode?>();

    /// <summary>The clock strftime_now reads; null means the current local time.</summary>
    public DateTime? Now { get; init; }

    /// <summary>Builds a request from plain role/content messages.</summary>
    public static ChatRequest FromMessages(IEnumerable<ChatMessage> messages, bool addGenerationPrompt = false) =>
        new(new JsonArray(messages.Select(m => (JsonNode?)new JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray()))
        {
            AddGenerationPrompt = addGenerationPrompt,
        };
}
