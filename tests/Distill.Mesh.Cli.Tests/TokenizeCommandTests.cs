using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Cli.Tests;

/// <summary><c>distill tokenize --chat</c> with the tokenizer's own chat template.</summary>
public sealed class TokenizeCommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Qwen3 => SharedData.PathOf("tokenizers", "qwen3");

    [Fact]
    public async Task Chat_ObjectWithVariables_RendersExactlyAsTheReference()
    {
        var c = ReferenceCase("qwen3", "enable_thinking_false");
        var file = Write("chat.json", new JsonObject
        {
            ["messages"] = c["messages"]!.DeepClone(),
            ["add_generation_prompt"] = c["add_generation_prompt"]!.DeepClone(),
            ["enable_thinking"] = false,
        });

        var result = await CliRunner.Json("tokenize", "--tokenizer", Qwen3, "--chat", file, "--json");

        Assert.Equal(c["rendered"]!.GetValue<string>(), result["rendered"]!.GetValue<string>());
        Assert.Equal(result["rendered"]!.GetValue<string>(), result["text"]!.GetValue<string>());
        Assert.Equal("turns", result["mask_source"]!.GetValue<string>());
        Assert.EndsWith("<think>\n\n</think>\n\n", result["rendered"]!.GetValue<string>());
        Assert.Equal(result["ids"]!.AsArray().Count, result["assistant_mask"]!.AsArray().Count);
    }

    [Fact]
    public async Task Chat_PlainListAndGenerationPromptFlag_EqualTheObjectForm()
    {
        var c = ReferenceCase("qwen3", "multi_turn");
        var list = Write("list.json", c["messages"]!.DeepClone());
        var obj = Write("object.json", new JsonObject { ["messages"] = c["messages"]!.DeepClone(), ["add_generation_prompt"] = true });

        var fromList = await CliRunner.Json("tokenize", "--tokenizer", Qwen3, "--chat", list, "--add-generation-prompt", "--json");
        var fromObject = await CliRunner.Json("tokenize", "--tokenizer", Qwen3, "--chat", obj, "--json");

        Assert.Equal(c["rendered"]!.GetValue<string>(), fromList["rendered"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(fromList["ids"], fromObject["ids"]));
        var tokens = fromList["tokens"]!.AsArray().Select(t => t!.GetValue<string>()).ToList();
        var mask = fromList["assistant_mask"]!.AsArray().Select(m => m!.GetValue<bool>()).ToList();
        Assert.Equal(2, tokens.Where((_, i) => mask[i]).Count(t => t == "<|im_end|>"));
    }

    [Fact]
    public async Task Chat_Now_FixesTheClockStrftimeNowReads()
    {
        var folder = ByteTokenizerWithTemplate("clock", "{{ strftime_now('%d %b %Y %H:%M') }}|{{ messages[0].content }}");
        var fixedClock = Write("fixed.json", new JsonObject { ["messages"] = Messages(), ["now"] = "2025-03-14T15:09:26" });
        var wallClock = Write("wall.json", new JsonObject { ["messages"] = Messages() });

        var fixedResult = await CliRunner.Json("tokenize", "--tokenizer", folder, "--chat", fixedClock, "--json");
        var wallResult = await CliRunner.Json("tokenize", "--tokenizer", folder, "--chat", wallClock, "--json");

        Assert.Equal("14 Mar 2025 15:09|hi", fixedResult["rendered"]!.GetValue<string>());
        Assert.Contains(DateTime.Now.Year.ToString(System.Globalization.CultureInfo.InvariantCulture), wallResult["rendered"]!.GetValue<string>());
    }

    [Fact]
    public async Task Chat_TemplateRaises_OneLineErrorWithTheTemplatesMessage()
    {
        var folder = ByteTokenizerWithTemplate("gemma", null);
        File.Copy(SharedData.PathOf("chat-templates", "gemma2-it", "tokenizer_config.json"), Path.Combine(folder, "tokenizer_config.json"), overwrite: true);
        var file = Write("system.json", new JsonArray(new JsonObject { ["role"] = "system", ["content"] = "Be brief." }, new JsonObject { ["role"] = "user", ["content"] = "Hi" }));

        var (code, _, error) = await CliRunner.Run("tokenize", "--tokenizer", folder, "--chat", file, "--json");

        Assert.Equal(1, code);
        Assert.Equal("error: the chat template raised an error: System role not supported", error.Trim());
    }

    [Theory]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"now\": \"yesterday\"}", "'now' must be a date and time")]
    [InlineData("{\"messages\": [{\"content\": \"hi\"}]}", "message 0 must be an object with a string 'role'")]
    [InlineData("{\"messages\": []}", "the conversation has no messages")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"add_generation_prompt\": \"yes\"}", "'add_generation_prompt' must be true or false")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": {}}", "'tools' must be a list")]
    [InlineData("{\"turns\": []}", "expected a list of messages or an object with a 'messages' list")]
    public async Task Chat_BadFile_OneLineErrorNamingTheProblem(string json, string problem)
    {
        var file = _dir.Combine("bad.json");
        File.WriteAllText(file, json);

        var (code, _, error) = await CliRunner.Run("tokenize", "--tokenizer", ByteTokenizerWithTemplate("bytes", null), "--chat", file);

        Assert.Equal(1, code);
        Assert.StartsWith("error: ", error);
        Assert.Contains(problem, error);
    }

    [Fact]
    public async Task Chat_BuiltInFormat_KeepsTheLayoutAndRefusesTemplateVariables()
    {
        var plain = Write("plain.json", Messages());
        var withVariables = Write("vars.json", new JsonObject { ["messages"] = Messages(), ["enable_thinking"] = false });

        var tokenizer = ByteTokenizerWithTemplate("bytes", null);

        var layout = await CliRunner.Json("tokenize", "--tokenizer", tokenizer, "--chat", plain, "--chat-format", "chatml", "--json");
        var (code, _, error) = await CliRunner.Run("tokenize", "--tokenizer", tokenizer, "--chat", withVariables, "--chat-format", "chatml");

        Assert.Equal("<|im_start|>user\nhi<|im_end|>", layout["rendered"]!.GetValue<string>());
        Assert.Equal("layout", layout["mask_source"]!.GetValue<string>());
        Assert.Equal(1, code);
        Assert.Contains("enable_thinking", error);
        Assert.Contains("need the tokenizer's own chat template", error);
    }

    private static JsonObject ReferenceCase(string family, string name) =>
        JsonNode.Parse(File.ReadAllText(SharedData.PathOf("chat-templates", family, "cases.json")))!["cases"]!.AsArray()
            .Single(c => c!["name"]!.GetValue<string>() == name)!.AsObject();

    private static JsonArray Messages() => [new JsonObject { ["role"] = "user", ["content"] = "hi" }];

    private string Write(string name, JsonNode content)
    {
        var path = _dir.Combine(name);
        File.WriteAllText(path, content.ToJsonString());
        return path;
    }

    private string ByteTokenizerWithTemplate(string name, string? template)
    {
        var folder = _dir.Combine(name);
        ByteTokenizerBuilder.Write(folder);
        if (template is not null)
            File.WriteAllText(Path.Combine(folder, "chat_template.jinja"), template);
        return folder;
    }
}
