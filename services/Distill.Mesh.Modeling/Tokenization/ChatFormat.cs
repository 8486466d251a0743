namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>The chat layouts this project renders (HF Jinja templates are recognised, not executed).</summary>
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
public sealed record TokenizedChat(IReadOnlyList<int> Ids, IReadOnlyList<bool> AssistantMask);
