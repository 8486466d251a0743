namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>
/// Tokenizes conversations with a mask of the assistant's tokens: through the tokenizer's own Jinja
/// chat template when it has one (see <see cref="AssistantMasks"/> for the mask), otherwise through
/// one of the built-in layouts, where an assistant turn — its header, content and end token — is the
/// assistant's and everything else (system, user, and the separators after their end tokens) is not.
/// </summary>
public static class ChatTemplates
{
    /// <summary>Names accepted on the command line and in configs.</summary>
    public static readonly IReadOnlyDictionary<string, ChatFormat> Names = new Dictionary<string, ChatFormat>(StringComparer.OrdinalIgnoreCase)
    {
        ["chatml"] = ChatFormat.ChatMl,
        ["llama3"] = ChatFormat.Llama3,
        ["mistral"] = ChatFormat.MistralInstruct,
    };

    /// <summary>
    /// Picks the layout from tokenizer_config.json's chat_template, or, without one, from the
    /// special tokens the vocabulary has.
    /// </summary>
    public static ChatFormat Detect(TextTokenizer tokenizer)
    {
        var template = tokenizer.Settings.ChatTemplate;
        if (template is not null)
        {
            if (template.Contains("<|im_start|>", StringComparison.Ordinal))
                return ChatFormat.ChatMl;
            if (template.Contains("<|start_header_id|>", StringComparison.Ordinal))
                return ChatFormat.Llama3;
            if (template.Contains("[INST]", StringComparison.Ordinal))
                return ChatFormat.MistralInstruct;
            throw new TokenizerFormatException($"the tokenizer's chat_template is not one of the known layouts ({string.Join(", ", Names.Keys)}); choose one explicitly");
        }

        if (tokenizer.TokenToId("<|im_start|>") is not null)
            return ChatFormat.ChatMl;
        if (tokenizer.TokenToId("<|start_header_id|>") is not null)
            return ChatFormat.Llama3;
        throw new TokenizerFormatException($"the tokenizer has no chat_template and no known chat tokens; choose a layout explicitly ({string.Join(", ", Names.Keys)})");
    }

    /// <summary>Renders <paramref name="messages"/> as text segments.</summary>
    /// <param name="format">The layout.</param>
    /// <param name="messages">The conversation.</param>
    /// <param name="addGenerationPrompt">End with the header of a new assistant turn (for generation).</param>
    /// <param name="bosToken">BOS text for layouts that start with it (Llama 3, Mistral).</param>
    /// <param name="eosToken">EOS text that ends Mistral assistant turns.</param>
    public static IReadOnlyList<ChatSegment> Render(ChatFormat format, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, string? bosToken = null, string? eosToken = null)
    {
        if (messages.Count == 0)
            throw new ArgumentException("a conversation needs at least one message");
        foreach (var message in messages)
        {
            if (message.Role is not ("system" or "user" or "assistant" or "tool"))
                throw new ArgumentException($"unknown chat role '{message.Role}' (expected system, user, assistant or tool)");
        }

        return format switch
        {
            ChatFormat.ChatMl => ChatMl(messages, addGenerationPrompt),
            ChatFormat.Llama3 => Llama3(messages, addGenerationPrompt, bosToken ?? "<|begin_of_text|>"),
            ChatFormat.MistralInstruct => Mistral(messages, addGenerationPrompt, bosToken ?? "<s>", eosToken ?? "</s>"),
            _ => throw new ArgumentOutOfRangeException(nameof(format)),
        };
    }

    /// <summary>
    /// Renders and tokenizes a conversation. The whole text is encoded at once, as HF's
    /// apply_chat_template does (encoding segment by segment would differ for tokenizers whose
    /// normalizer prepends "▁" to every piece of text). A segment's tokens are found by encoding
    /// each prefix of the text: a token belongs to the first segment whose prefix encoding contains it.
    /// </summary>
    /// <remarks>Without <paramref name="format"/>, a tokenizer with a chat template uses it; a named format forces that layout.</remarks>
    public static TokenizedChat Tokenize(TextTokenizer tokenizer, IReadOnlyList<ChatMessage> messages, ChatFormat? format = null, bool addGenerationPrompt = false)
    {
        if (format is null && tokenizer.ChatTemplate is not null)
        {
            if (messages.Count == 0)
                throw new ArgumentException("a conversation needs at least one message");
            return Tokenize(tokenizer, ChatRequest.FromMessages(messages, addGenerationPrompt));
        }

        var segments = Render(format ?? Detect(tokenizer), messages, addGenerationPrompt, tokenizer.Settings.BosToken, tokenizer.Settings.EosToken);
        var text = string.Concat(segments.Select(s => s.Text));
        var ids = tokenizer.Encode(text);
        var mask = new bool[ids.Count];
        var prefix = new System.Text.StringBuilder();
        var start = 0;
        for (var k = 0; k < segments.Count; k++)
        {
            prefix.Append(segments[k].Text);
            var end = k == segments.Count - 1 ? ids.Count : CommonPrefixLength(tokenizer.Encode(prefix.ToString()), ids);
            for (var i = start; i < end; i++)
                mask[i] = segments[k].Assistant;
            start = Math.Max(start, end);
        }

        return new TokenizedChat(ids, mask) { Rendered = text };
    }

    /// <summary>
    /// Renders <paramref name="request"/> with the tokenizer's chat template and tokenizes the text as
    /// apply_chat_template does (special tokens written by the template become their ids; no BOS/EOS
    /// is added beyond what the template writes).
    /// </summary>
    public static TokenizedChat Tokenize(TextTokenizer tokenizer, ChatRequest request)
    {
        var template = tokenizer.ChatTemplate
            ?? throw new TokenizerFormatException($"the tokenizer has no chat_template; choose a layout explicitly ({string.Join(", ", Names.Keys)})");
        var rendering = template.Render(request);
        var ids = tokenizer.Encode(rendering.Text);
        var generation = template.HasGenerationBlocks(request);
        var mask = generation
            ? AssistantMasks.FromSpans(tokenizer, rendering.Text, ids, rendering.GenerationSpans)
            : AssistantMasks.FromTurns(tokenizer, template, request, ids);
        return new TokenizedChat(ids, mask) { Rendered = rendering.Text, MaskSource = generation ? "generation" : "turns" };
    }

    private static int CommonPrefixLength(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        var n = 0;
        while (n < a.Count && n < b.Count && a[n] == b[n])
            n++;
        return n;
    }

    // A turn is "<|im_start|>role\ncontent<|im_end|>"; the "\n" between turns goes with the earlier
    // turn, and none follows the last one (torchtune's layout; HF's template adds it).
    private static List<ChatSegment> ChatMl(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var segments = new List<ChatSegment>();
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            var separator = i < messages.Count - 1 || addGenerationPrompt ? "\n" : "";
            if (m.Role == "assistant")
            {
                segments.Add(new ChatSegment($"<|im_start|>assistant\n{m.Content}<|im_end|>", true));
                if (separator.Length > 0)
                    segments.Add(new ChatSegment(separator, false));
            }
            else
            {
                segments.Add(new ChatSegment($"<|im_start|>{m.Role}\n{m.Content}<|im_end|>{separator}", false));
            }
        }

        if (addGenerationPrompt)
            segments.Add(new ChatSegment("<|im_start|>assistant\n", false));
        return segments;
    }

    private static List<ChatSegment> Llama3(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, string bos)
    {
        var segments = new List<ChatSegment> { new(bos, false) };
        foreach (var m in messages)
            segments.Add(new ChatSegment($"<|start_header_id|>{m.Role}<|end_header_id|>\n\n{m.Content.Trim()}<|eot_id|>", m.Role == "assistant"));
        if (addGenerationPrompt)
            segments.Add(new ChatSegment("<|start_header_id|>assistant<|end_header_id|>\n\n", false));
        return segments;
    }

    private static List<ChatSegment> Mistral(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, string bos, string eos)
    {
        var turns = messages.ToList();
        string? system = null;
        if (turns[0].Role == "system")
        {
            system = turns[0].Content;
            turns.RemoveAt(0);
        }

        var segments = new List<ChatSegment> { new(bos, false) };
        for (var i = 0; i < turns.Count; i++)
        {
            var expected = i % 2 == 0 ? "user" : "assistant";
            if (turns[i].Role != expected)
                throw new ArgumentException($"the Mistral layout needs user and assistant turns alternating, starting with user (message {i} is '{turns[i].Role}')");
            if (expected == "user")
            {
                var content = i == 0 && system is not null ? $"{system}\n\n{turns[i].Content}" : turns[i].Content;
                segments.Add(new ChatSegment($"[INST] {content} [/INST]", false));
            }
            else
            {
                segments.Add(new ChatSegment($"{turns[i].Content}{eos}", true));
            }
        }

        _ = addGenerationPrompt; // the prompt already ends with [/INST]
        return segments;
    }
}
