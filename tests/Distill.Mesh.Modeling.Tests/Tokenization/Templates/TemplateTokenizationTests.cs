using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Modeling.Tests.Tokenization.Templates;

/// <summary>Rendered templates through the real Qwen3 and Llama 3 tokenizers, and where templates are read from.</summary>
public sealed class TemplateTokenizationTests : IDisposable
{
    private static readonly Lazy<TextTokenizer> Qwen3 = new(() => TokenizerLoader.Load(SharedData.PathOf("tokenizers", "qwen3")));
    private static readonly Lazy<TextTokenizer> Llama3 = new(() => TokenizerLoader.Load(SharedData.PathOf("tokenizers", "llama3")));
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> QwenCases => new(ChatTemplateCases.File("qwen3")["cases"]!.AsArray().Select(c => c!["name"]!.GetValue<string>()));

    // tokenizers/qwen3/tokenizer_config.json is the same file as chat-templates/qwen3's, so its renderings apply.
    [Theory]
    [MemberData(nameof(QwenCases))]
    public void Qwen3_ReferenceCase_SpecialTokensBecomeTheirIds(string name)
    {
        var c = ChatTemplateCases.Case("qwen3", name);
        var tokenizer = Qwen3.Value;

        var chat = ChatTemplates.Tokenize(tokenizer, ChatTemplateCases.Request("qwen3", c));

        Assert.Equal(c["rendered"]!.GetValue<string>(), chat.Rendered);
        Assert.Equal(chat.Rendered, tokenizer.Decode(chat.Ids));
        foreach (var (text, id) in new[] { ("<|im_start|>", 151644), ("<|im_end|>", 151645), ("<think>", 151667), ("</think>", 151668), ("<tool_call>", 151657) })
            Assert.Equal(Occurrences(chat.Rendered!, text), chat.Ids.Count(i => i == id));
        var masked = chat.Ids.Where((_, i) => chat.AssistantMask[i]).ToList();
        var replies = c["messages"]!.AsArray().Count(m => m!["role"]!.GetValue<string>() == "assistant");
        Assert.Equal(replies, masked.Count(i => i == 151645));
        Assert.DoesNotContain(151644, masked);
    }

    // The ids of each message come from dotnet/machinelearning's Llama 3.1 tokenizer test (expected_encodings.json).
    [Fact]
    public void Llama3_Conversation_IdsAreHeaderIdsAndTheReferenceIdsOfEachMessage()
    {
        var cases = JsonNode.Parse(File.ReadAllText(SharedData.PathOf("tokenizers", "expected_encodings.json")))!["llama3_1_mlnet_genai_no_bos"]!["cases"]!.AsArray();
        int[] Ids(int k) => cases[k]!["ids"]!.AsArray().Select(i => i!.GetValue<int>()).ToArray();
        string Text(int k) => cases[k]!["text"]!.GetValue<string>();
        var tokenizer = Llama3.Value;
        int[] Header(string role) => [128006, .. tokenizer.Encode(role), 128007, .. tokenizer.Encode("\n\n")];

        var chat = ChatTemplates.Tokenize(tokenizer, [new ChatMessage("user", Text(0)), new ChatMessage("assistant", Text(1)), new ChatMessage("user", Text(2))]);

        int[] expected = [128000, .. Header("user"), .. Ids(0), 128009, .. Header("assistant"), .. Ids(1), 128009, .. Header("user"), .. Ids(2), 128009, .. Header("assistant")];
        Assert.Equal(expected, chat.Ids);
        Assert.Equal([.. Ids(1), 128009], chat.Ids.Where((_, i) => chat.AssistantMask[i]));
    }

    [Fact]
    public void Settings_ChatTemplateJinjaBesideTheConfig_ReplacesTheConfigsTemplate()
    {
        var folder = Folder("jinja", new JsonObject { ["chat_template"] = "config {{ messages|length }}", ["eos_token"] = "</s>" });
        File.WriteAllText(Path.Combine(folder, "chat_template.jinja"), "file {{ messages[0].content }}{{ eos_token }}\n");

        var template = ChatTemplate.FromSettings(TokenizerSettings.Load(folder))!;

        Assert.Equal("file hi</s>", template.Render(Request()).Text);
    }

    [Fact]
    public void Settings_ChatTemplateJson_IsRead()
    {
        var folder = Folder("json", new JsonObject());
        File.WriteAllText(Path.Combine(folder, "chat_template.json"), new JsonObject { ["chat_template"] = "json {{ add_generation_prompt }}" }.ToJsonString());

        Assert.Equal("json False", ChatTemplate.FromSettings(TokenizerSettings.Load(folder))!.Render(Request()).Text);
    }

    [Fact]
    public void Settings_NamedTemplates_DefaultOrToolUseWhenToolsAreGiven()
    {
        var folder = Folder("named", new JsonObject
        {
            ["chat_template"] = new JsonArray(
                new JsonObject { ["name"] = "default", ["template"] = "plain" },
                new JsonObject { ["name"] = "tool_use", ["template"] = "tools: {{ tools|length }}" }),
        });

        var template = ChatTemplate.FromSettings(TokenizerSettings.Load(folder))!;

        Assert.Equal("plain", template.Render(Request()).Text);
        Assert.Equal("tools: 1", template.Render(Request() with { Tools = [new JsonObject { ["type"] = "function" }] }).Text);
    }

    [Fact]
    public void Settings_NamedTemplatesWithoutDefault_AreRefusedByName()
    {
        var folder = Folder("nodefault", new JsonObject { ["chat_template"] = new JsonArray(new JsonObject { ["name"] = "rag", ["template"] = "x" }) });

        var error = Assert.Throws<TokenizerFormatException>(() => ChatTemplate.FromSettings(TokenizerSettings.Load(folder))!.Render(Request()));

        Assert.Contains("none named 'default'", error.Message);
        Assert.Contains("rag", error.Message);
    }

    [Fact]
    public void Template_WithSyntaxError_IsATokenizerFormatErrorNamingTheLine()
    {
        var folder = Folder("broken", new JsonObject { ["chat_template"] = "{% for m in messages %}\n{{ m.content }" });

        var error = Assert.Throws<TokenizerFormatException>(() => ChatTemplate.FromSettings(TokenizerSettings.Load(folder)));

        Assert.Contains("line 2", error.Message);
    }

    private static ChatRequest Request() => ChatRequest.FromMessages([new ChatMessage("user", "hi")]);

    private string Folder(string name, JsonObject config)
    {
        var folder = _dir.Combine(name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config.ToJsonString());
        return folder;
    }

    private static int Occurrences(string text, string token)
    {
        var n = 0;
        for (var at = text.IndexOf(token, StringComparison.Ordinal); at >= 0; at = text.IndexOf(token, at + token.Length, StringComparison.Ordinal))
            n++;
        return n;
    }
}
