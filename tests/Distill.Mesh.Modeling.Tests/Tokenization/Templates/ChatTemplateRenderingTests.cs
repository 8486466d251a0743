using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Modeling.Tokenization.Templates;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Modeling.Tests.Tokenization.Templates;

/// <summary>Every reference rendering of shared/data/chat-templates, byte for byte, and every expected raise_exception.</summary>
public class ChatTemplateRenderingTests
{
    public static TheoryData<string, string> Cases => ChatTemplateCases.All();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Render_ReferenceCase_MatchesPythonJinja(string family, string name)
    {
        var c = ChatTemplateCases.Case(family, name);
        var template = ChatTemplateCases.Template(family);
        var request = ChatTemplateCases.Request(family, c);

        if (c["expect_error"]?.GetValue<bool>() == true)
        {
            var error = Assert.Throws<TemplateRaisedException>(() => template.Render(request));
            Assert.Equal(c["error_message"]!.GetValue<string>(), error.TemplateMessage);
            Assert.Contains(c["error_message"]!.GetValue<string>(), error.Message);
            return;
        }

        var rendered = template.Render(request).Text;

        Assert.Equal(c["rendered"]!.GetValue<string>(), rendered);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Settings_SpecialTokens_AreWhatTransformersPasses(string family)
    {
        var expected = ChatTemplateCases.File(family)["special_tokens_passed"]!.AsObject();

        var tokens = TokenizerSettings.Load(SharedData.PathOf("chat-templates", family)).TemplateTokens;

        Assert.Equal(expected.Select(p => p.Key).Order(), tokens.Keys.Order());
        foreach (var (key, value) in expected)
            Assert.True(JsonNode.DeepEquals(value, tokens[key]), $"{key}: {tokens[key]?.ToJsonString()} != {value?.ToJsonString()}");
    }

    public static TheoryData<string> Families => new(ChatTemplateCases.Families());
}
