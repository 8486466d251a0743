using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Modeling.Tests.Tokenization;

public class ChatTemplateTests
{
    [Fact]
    public void TinyQwen2_ChatMlConversation_MatchesTorchtuneIdsAndLossMask()
    {
        var expected = JsonNode.Parse(File.ReadAllText(SharedData.PathOf("tokenizers", "tiny", "expected.json")))!["qwen2_style_chatml"]!;
        var tokenizer = TokenizerLoader.Load(SharedData.PathOf("tokenizers", "tiny", "qwen2-style", "tiny_bpe_tokenizer.json"));
        var messages = expected["messages"]!.AsArray()
            .Select(m => new ChatMessage(m!["role"]!.GetValue<string>(), m["content"]!.GetValue<string>())).ToList();

        var chat = ChatTemplates.Tokenize(tokenizer, messages);

        Assert.Equal(ChatFormat.ChatMl, ChatTemplates.Detect(tokenizer));
        Assert.Equal(expected["expected_ids"]!.AsArray().Select(i => i!.GetValue<int>()), chat.Ids);
        // torchtune's mask is True where a token is excluded from the loss: [True]*67 + [False]*121.
        Assert.Equal(Enumerable.Repeat(false, 67).Concat(Enumerable.Repeat(true, 121)), chat.AssistantMask);
        // Segment-wise encoding equals encoding the whole rendered text at once.
        var text = string.Concat(ChatTemplates.Render(ChatFormat.ChatMl, messages, false).Select(s => s.Text));
        Assert.Equal(expected["formatted_text"]!.GetValue<string>(), text);
        Assert.Equal(tokenizer.Encode(text), chat.Ids);
    }

    [Fact]
    public void Llama3_OwnTemplate_IsExecutedAndMasksTheReply()
    {
        var tokenizer = TokenizerLoader.Load(SharedData.PathOf("tokenizers", "llama3"));
        ChatMessage[] messages = [new("system", "Be brief."), new("user", " Hi! "), new("assistant", "Hello.")];

        var chat = ChatTemplates.Tokenize(tokenizer, messages, addGenerationPrompt: false);
        var layout = ChatTemplates.Tokenize(tokenizer, messages, ChatFormat.Llama3, addGenerationPrompt: false);

        // Meta-Llama-3's base template always ends with an assistant header; the built-in layout does not.
        const string turns = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>";
        Assert.Equal(turns + "<|start_header_id|>assistant<|end_header_id|>\n\n", chat.Rendered);
        Assert.Equal(chat.Rendered, tokenizer.Decode(chat.Ids));
        Assert.Equal("turns", chat.MaskSource);
        Assert.Equal(128000, chat.Ids[0]);
        Assert.Equal("Hello.<|eot_id|>", tokenizer.Decode(chat.Ids.Where((_, i) => chat.AssistantMask[i])));
        Assert.Equal(turns, tokenizer.Decode(layout.Ids));
        Assert.Equal("<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>", tokenizer.Decode(layout.Ids.Where((_, i) => layout.AssistantMask[i])));
    }

    [Fact]
    public void Mistral_InstLayout_FoldsSystemIntoFirstUserTurn()
    {
        var tokenizer = TokenizerLoader.Load(SharedData.PathOf("tokenizers", "mistral-v0.1"));
        ChatMessage[] messages = [new("system", "Be brief."), new("user", "Hi"), new("assistant", "Hello"), new("user", "Bye")];

        var chat = ChatTemplates.Tokenize(tokenizer, messages, ChatFormat.MistralInstruct, addGenerationPrompt: true);

        Assert.Equal(1, chat.Ids[0]);
        var text = tokenizer.Decode(chat.Ids);
        Assert.Equal(tokenizer.Encode("<s>[INST] Be brief.\n\nHi [/INST]Hello</s>[INST] Bye [/INST]"), chat.Ids);
        // HF's legacy SentencePiece normalizer puts "▁" at the start of each text run after a special token.
        Assert.Equal("<s> [INST] Be brief.\n\nHi [/INST]Hello</s> [INST] Bye [/INST]", text);
        var assistant = chat.Ids.Where((_, i) => chat.AssistantMask[i]).ToList();
        Assert.Equal(2, assistant[^1]);
        Assert.Equal("Hello</s>", tokenizer.Decode(assistant));
        Assert.Throws<TokenizerFormatException>(() => ChatTemplates.Detect(tokenizer));
    }

    [Fact]
    public void Render_BadConversations_AreRejected()
    {
        Assert.Throws<ArgumentException>(() => ChatTemplates.Render(ChatFormat.ChatMl, [], false));
        Assert.Throws<ArgumentException>(() => ChatTemplates.Render(ChatFormat.ChatMl, [new("robot", "x")], false));
        Assert.Throws<ArgumentException>(() => ChatTemplates.Render(ChatFormat.MistralInstruct, [new("assistant", "x")], false));
    }

    [Fact]
    public void ChatMl_GenerationPrompt_EndsWithAssistantHeader()
    {
        var segments = ChatTemplates.Render(ChatFormat.ChatMl, [new("user", "hi")], addGenerationPrompt: true);

        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", string.Concat(segments.Select(s => s.Text)));
    }
}
