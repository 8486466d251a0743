using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Modeling.Tests.Tokenization.Templates;

public sealed class AssistantMaskTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string, string> Cases => ChatTemplateCases.All();

    // Each assistant turn is its reply and end-of-turn token, never the header or the separator after it;
    // the expected spans are read off the reference renderings by hand.
    [Theory]
    [InlineData("qwen3", "multi_turn", "I'm an AI assistant. How can I help?<|im_end|>", "Why did the scarecrow win an award? Because he was outstanding in his field.<|im_end|>")]
    [InlineData("qwen3", "reasoning_content_after_last_query", "17*3 = 51.<|im_end|>", "<think>\n51 + 17 = 68.\n</think>\n\n17*4 = 68.<|im_end|>")]
    [InlineData("qwen2.5-instruct", "tool_call_and_response", "<tool_call>\n{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris, France\", \"unit\": \"celsius\"}}\n</tool_call><|im_end|>")]
    [InlineData("llama3", "ending_assistant_gen_true", "7 is a prime number.<|eot_id|>", "2 is the only even prime.<|eot_id|>")]
    [InlineData("llama3.1-instruct", "builtin_tools_ipython", "<|python_tag|>brave_search.call(query=\"Eiffel Tower height\")<|eom_id|>")]
    [InlineData("mistral-v0.3-instruct", "system_goes_into_last_user_turn", " Blue.</s>")]
    [InlineData("mistral-v0.3-instruct", "tools_call_and_result", "[TOOL_CALLS] [{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris, France\", \"unit\": \"celsius\"}, \"id\": \"9Ae3bDc2F\"}]</s>", " It is 18.5 °C and partly cloudy in Paris.</s>")]
    [InlineData("gemma2-it", "model_role_and_trim", "Hello! How can I help?<end_of_turn>")]
    [InlineData("gemma3-it", "content_parts_text_and_image", "A cat.<end_of_turn>")]
    [InlineData("phi3.5-mini-instruct", "no_gen_prompt_appends_eos", "Hello!<|end|>\n<|endoftext|>")]
    [InlineData("phi4-mini-instruct", "empty_content", "<|end|>")]
    [InlineData("deepseek-r1-distill-qwen", "think_stripped_from_history", "\n\nIt is 2.<｜end▁of▁sentence｜>")]
    public void Mask_ReferenceConversation_CoversRepliesAndEndOfTurn(string family, string name, params string[] expected)
    {
        var tokenizer = FamilyTokenizer.Create(_dir, family);

        var chat = ChatTemplates.Tokenize(tokenizer, ChatTemplateCases.Request(family, ChatTemplateCases.Case(family, name)));

        Assert.Equal("turns", chat.MaskSource);
        Assert.Equal(expected, MaskedRuns(tokenizer, chat));
    }

    // Over every reference conversation: the ids are the rendering, there is one run per assistant
    // message, and each run holds that message's text (as the template writes it: trimmed, after </think>).
    [Theory]
    [MemberData(nameof(Cases))]
    public void Mask_EveryReferenceConversation_OneRunPerAssistantMessageHoldingItsText(string family, string name)
    {
        var c = ChatTemplateCases.Case(family, name);
        if (c["expect_error"] is not null)
            return;
        var tokenizer = FamilyTokenizer.Create(_dir, family);

        var chat = ChatTemplates.Tokenize(tokenizer, ChatTemplateCases.Request(family, c));

        Assert.Equal(c["rendered"]!.GetValue<string>(), chat.Rendered);
        Assert.Equal(chat.Rendered, tokenizer.Decode(chat.Ids));
        var replies = c["messages"]!.AsArray().Where(m => m!["role"]!.GetValue<string>() == "assistant").ToList();
        var runs = MaskedRuns(tokenizer, chat);
        Assert.Equal(replies.Count, runs.Count);
        for (var i = 0; i < replies.Count; i++)
        {
            if (replies[i]!["content"] is JsonValue content && content.GetValue<string>() is var text)
                Assert.Contains(text.Split("</think>")[^1].Trim(), runs[i]);
        }
    }

    [Fact]
    public void Mask_TemplateWithGenerationBlocks_IsExactlyTheirOutput()
    {
        var folder = _dir.Combine("generation");
        ByteTokenizerBuilder.Write(folder);
        File.WriteAllText(Path.Combine(folder, "chat_template.jinja"),
            "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' %}{% generation %}{{ m.content }}<|im_end|>{% endgeneration %}{% else %}{{ m.content }}<|im_end|>{% endif %}{{ '\\n' }}{% endfor %}");
        var tokenizer = TokenizerLoader.Load(folder);

        var chat = ChatTemplates.Tokenize(tokenizer, [new ChatMessage("user", "2+2?"), new ChatMessage("assistant", "4"), new ChatMessage("user", "and 3+3?"), new ChatMessage("assistant", "6")]);

        Assert.Equal("generation", chat.MaskSource);
        Assert.Equal("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nand 3+3?<|im_end|>\n<|im_start|>assistant\n6<|im_end|>\n", chat.Rendered);
        Assert.Equal(["4<|im_end|>", "6<|im_end|>"], MaskedRuns(tokenizer, chat));
    }

    private static List<string> MaskedRuns(TextTokenizer tokenizer, TokenizedChat chat)
    {
        var runs = new List<string>();
        for (var i = 0; i < chat.Ids.Count; i++)
        {
            if (!chat.AssistantMask[i])
                continue;
            var end = i;
            while (end < chat.Ids.Count && chat.AssistantMask[end])
                end++;
            runs.Add(tokenizer.Decode(chat.Ids.Skip(i).Take(end - i)));
            i = end;
        }

        return runs;
    }
}
