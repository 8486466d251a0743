using System.Globalization;
using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Modeling.Tests.Tokenization.Templates;

/// <summary>The reference renderings in shared/data/chat-templates (what Python's Jinja2 renders for each case).</summary>
internal static class ChatTemplateCases
{
    public static IEnumerable<string> Families() =>
        Directory.GetDirectories(SharedData.PathOf("chat-templates")).Select(Path.GetFileName).Order(StringComparer.Ordinal)!;

    public static JsonObject File(string family) =>
        JsonNode.Parse(System.IO.File.ReadAllText(SharedData.PathOf("chat-templates", family, "cases.json")))!.AsObject();

    public static JsonObject Case(string family, string name) =>
        File(family)["cases"]!.AsArray().Single(c => c!["name"]!.GetValue<string>() == name)!.AsObject();

    public static TheoryData<string, string> All()
    {
        var data = new TheoryData<string, string>();
        foreach (var family in Families())
        {
            foreach (var c in File(family)["cases"]!.AsArray())
                data.Add(family, c!["name"]!.GetValue<string>());
        }

        return data;
    }

    /// <summary>The request a case describes, with the file's fixed clock.</summary>
    public static ChatRequest Request(string family, JsonObject c) => new(c["messages"]!.AsArray())
    {
        AddGenerationPrompt = c["add_generation_prompt"]!.GetValue<bool>(),
        Tools = c["tools"] as JsonArray,
        Variables = (c["extra"] as JsonObject)?.ToDictionary(p => p.Key, p => p.Value) ?? [],
        Now = DateTime.Parse(File(family)["fixed_now"]!.GetValue<string>(), CultureInfo.InvariantCulture),
    };

    public static ChatTemplate Template(string family) =>
        ChatTemplate.FromSettings(TokenizerSettings.Load(SharedData.PathOf("chat-templates", family)))!;
}
