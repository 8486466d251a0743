using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization.Templates;

namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>
/// Which tokens of a rendered conversation are the assistant's (trained on). With
/// <c>{% generation %}</c> blocks in the template, exactly the tokens inside them. Without, each
/// assistant turn is found by rendering the conversation turn by turn:
/// <list type="number">
/// <item>P = the conversation before turn i with <c>add_generation_prompt</c> — the prompt the model
/// answers. The turn starts where P ends in the full rendering (P must be its prefix; when the template
/// rewrites earlier turns, as Mistral moves the system prompt into the last user turn, the reply is
/// searched for after the previous turn instead).</item>
/// <item>R = what rendering up to and including turn i (without a generation prompt) adds after P —
/// the reply as the template writes it when it is the last turn.</item>
/// <item>The turn is the longest run at the start that the full rendering shares with R — either R's
/// beginning, or an ending part of R (Qwen3 writes an empty think block only for a final turn, so in the
/// middle of a conversation the reply is R's end) — without trailing whitespace-only tokens (the
/// separators between turns, which the model never generates) and without a trailing header start
/// (a template that always appends the assistant header, as Meta-Llama-3 base does).</item>
/// </list>
/// The result is the reply text and its end-of-turn token (<c>&lt;|im_end|&gt;</c>, <c>&lt;|eot_id|&gt;</c>,
/// <c>&lt;/s&gt;</c>, ...), not the header before it; a final turn also keeps an end-of-text token the
/// template writes after it (Phi-3.5 without a generation prompt).
/// </summary>
internal static class AssistantMasks
{
    /// <summary>Tokens inside character spans of <paramref name="text"/> (a token straddling a span's end is left out).</summary>
    public static bool[] FromSpans(TextTokenizer tokenizer, string text, IReadOnlyList<int> ids, IEnumerable<TextSpan> spans)
    {
        var mask = new bool[ids.Count];
        foreach (var span in spans)
        {
            var start = CommonPrefix(tokenizer.Encode(text[..span.Start]), ids, 0);
            var end = CommonPrefix(tokenizer.Encode(text[..span.End]), ids, 0);
            for (var i = start; i < end; i++)
                mask[i] = true;
        }

        return mask;
    }

    public static bool[] FromTurns(TextTokenizer tokenizer, ChatTemplate template, ChatRequest request, IReadOnlyList<int> ids)
    {
        var mask = new bool[ids.Count];
        var messages = request.Messages;
        var cursor = 0;
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i]?["role"] is not JsonValue role || role.GetValueKind() != System.Text.Json.JsonValueKind.String || role.GetValue<string>() != "assistant")
                continue;
            var prompt = tokenizer.Encode(RenderPrefix(template, request, i, generationPrompt: true));
            var upTo = tokenizer.Encode(RenderPrefix(template, request, i + 1, generationPrompt: false));
            var reply = upTo.Skip(ReplyStart(prompt, upTo)).ToList();
            var start = CommonPrefix(prompt, ids, 0);
            int length;
            if (start >= prompt.Count - 1 && start >= cursor)
            {
                length = Math.Max(CommonPrefix(reply, ids, start), EndingOverlap(tokenizer, reply, ids, start));
            }
            else
            {
                var core = TrimWhitespace(tokenizer, reply, 0, reply.Count);
                start = Find(reply, core, ids, cursor)
                    ?? throw new TemplateException($"cannot find assistant message {i} in the rendered conversation (the template writes it differently depending on what follows); add {{% generation %}} blocks to the template or choose a fixed chat format");
                length = core;
            }

            var end = start + TrimEnd(tokenizer, prompt, ids, start, length);
            for (var t = start; t < end; t++)
                mask[t] = true;
            cursor = Math.Max(cursor, end);
        }

        return mask;
    }

    private static string RenderPrefix(ChatTemplate template, ChatRequest request, int count, bool generationPrompt)
    {
        var messages = new JsonArray(request.Messages.Take(count).Select(m => m?.DeepClone()).ToArray());
        try
        {
            return template.Render(request with { Messages = messages, AddGenerationPrompt = generationPrompt }).Text;
        }
        catch (TemplateException e)
        {
            throw new TemplateException($"cannot mark assistant message {count - (generationPrompt ? 0 : 1)}: rendering the conversation up to it failed ({e.Message})", e);
        }
    }

    // Where the reply begins in `upTo`: after the longest ending part of the prompt found in it (all of
    // the prompt when it is a prefix; its last turn when the template rewrote earlier ones).
    private static int ReplyStart(IReadOnlyList<int> prompt, IReadOnlyList<int> upTo)
    {
        var prefix = CommonPrefix(prompt, upTo, 0);
        if (prefix == prompt.Count)
            return prefix;
        var (best, bestLength) = (prefix, 0);
        for (var end = prefix + 1; end <= upTo.Count; end++)
        {
            var n = 0;
            while (n < prompt.Count && n < end && prompt[prompt.Count - 1 - n] == upTo[end - 1 - n])
                n++;
            if (n > bestLength)
                (best, bestLength) = (end, n);
        }

        return best;
    }

    // Drops from the end: whitespace-only tokens (separators), and the start of a header — a special
    // token that in the prompt only ever opens one (it follows a special token and precedes text there,
    // like <|start_header_id|> or <|im_start|>) — with what follows it when that is the header the
    // prompt itself ends with. A template that always appends its assistant header (Meta-Llama-3 base)
    // would otherwise leave the next turn's header here.
    private static int TrimEnd(TextTokenizer tokenizer, IReadOnlyList<int> prompt, IReadOnlyList<int> ids, int start, int length)
    {
        var promptEnd = TrimWhitespace(tokenizer, prompt, 0, prompt.Count);
        while (true)
        {
            length = TrimWhitespace(tokenizer, ids, start, length);
            if (length == 0)
                return 0;
            if (OpensHeader(tokenizer, prompt, ids[start + length - 1]))
            {
                length--;
                continue;
            }

            var shared = 0;
            while (shared < length && shared < promptEnd && ids[start + length - 1 - shared] == prompt[promptEnd - 1 - shared])
                shared++;
            var cut = Enumerable.Range(start + length - shared, shared).FirstOrDefault(t => OpensHeader(tokenizer, prompt, ids[t]), -1);
            if (cut < 0)
                return length;
            length = cut - start;
        }
    }

    private static bool OpensHeader(TextTokenizer tokenizer, IReadOnlyList<int> prompt, int token)
    {
        if (!tokenizer.IsSpecial(token))
            return false;
        var seen = false;
        for (var i = 0; i < prompt.Count; i++)
        {
            if (prompt[i] != token)
                continue;
            if ((i > 0 && !tokenizer.IsSpecial(prompt[i - 1])) || (i + 1 < prompt.Count && tokenizer.IsSpecial(prompt[i + 1])))
                return false;
            seen = true;
        }

        return seen;
    }

    // Number of leading tokens of `a` equal to `b` from `offset` on.
    private static int CommonPrefix(IReadOnlyList<int> a, IReadOnlyList<int> b, int offset)
    {
        var n = 0;
        while (n < a.Count && offset + n < b.Count && a[n] == b[offset + n])
            n++;
        return n;
    }

    // The longest ending part of `reply` that `ids` continues with at `start` (and that holds more than whitespace).
    private static int EndingOverlap(TextTokenizer tokenizer, List<int> reply, IReadOnlyList<int> ids, int start)
    {
        for (var k = 1; k < reply.Count; k++)
        {
            var length = reply.Count - k;
            if (start + length > ids.Count || reply[k] != ids[start])
                continue;
            var matches = true;
            for (var j = 0; j < length && matches; j++)
                matches = reply[k + j] == ids[start + j];
            if (matches && TrimWhitespace(tokenizer, reply, k, length) > 0)
                return length;
        }

        return 0;
    }

    private static int? Find(List<int> reply, int length, IReadOnlyList<int> ids, int from)
    {
        if (length == 0)
            return null;
        for (var s = from; s + length <= ids.Count; s++)
        {
            var matches = true;
            for (var j = 0; j < length && matches; j++)
                matches = reply[j] == ids[s + j];
            if (matches)
                return s;
        }

        return null;
    }

    // Length of tokens[start..start+length) once whitespace-only tokens are dropped from its end.
    private static int TrimWhitespace(TextTokenizer tokenizer, IReadOnlyList<int> tokens, int start, int length)
    {
        while (length > 0 && !tokenizer.IsSpecial(tokens[start + length - 1]) && string.IsNullOrWhiteSpace(tokenizer.Decode([tokens[start + length - 1]])))
            length--;
        return length;
    }
}
