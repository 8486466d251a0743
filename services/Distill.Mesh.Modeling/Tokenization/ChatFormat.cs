namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>
/// The built-in chat layouts: used when asked for by name, and for tokenizers without a chat
/// template (a tokenizer's own Jinja template is executed, see <see cref="ChatTemplate"/>).
/// </summary>
public enum ChatFormat
{
    /// <summary><c>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;</c> — Qwen, many others.</summary>
    ChatMl,

    /// <summary><c>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\ncontent&lt;|eot_id|&gt;</c> — Llama 3.</summary>
    Llama3,

    /// <summary><c>&lt;s&gt;[INST] user [/INST]assistant&lt;/s&gt;</c> — Mistral / Llama 2 instruct.</summary>
    MistralInstruct,
}

/// <summary>One turn of a conversation.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>A piece of rendered chat text and whether it belongs to an assistant turn.</summary>
public sealed record ChatSegment(string Text, bool Assistant);

/// <summary>A tokenized conversation: ids and, per id, whether it is the assistant's (trained on).</summary>
public sealed record TokenizedChat(IReadOnlyList<int> Ids, IReadOnlyList<bool> AssistantMask)
{
    /// <summary>The rendered text the ids encode.</summary>
    public string? Rendered { get; init; }

    /// <summary>How the mask was found: "generation" (the template's {% generation %} blocks), "turns" (turn-by-turn rendering) or "layout" (a built-in layout).</summary>
    public string MaskSource { get; init; } = "layout";
}
