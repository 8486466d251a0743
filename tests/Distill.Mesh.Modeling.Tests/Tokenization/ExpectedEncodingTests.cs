using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Modeling.Tests.Tokenization;

/// <summary>Every text → ids expectation in ../shared/data/tokenizers, against the real tokenizer files.</summary>
public class ExpectedEncodingTests
{
    private static readonly Lazy<JsonObject> Expected = new(() =>
        JsonNode.Parse(File.ReadAllText(SharedData.PathOf("tokenizers", "expected_encodings.json")))!.AsObject());

    private static readonly Dictionary<string, Lazy<TextTokenizer>> Tokenizers = new()
    {
        ["gpt2_tiktoken"] = new(() => TokenizerLoader.Load(SharedData.PathOf("tokenizers", "gpt2"))),
        ["mistral_v0.1_mlnet_with_bos"] = new(() => TokenizerLoader.Load(SharedData.PathOf("tokenizers", "mistral-v0.1"))),
        ["llama3_1_mlnet_genai_no_bos"] = new(() => TokenizerLoader.Load(SharedData.PathOf("tokenizers", "llama3"))),
        ["llama2_mlnet_with_bos"] = new(() => TokenizerLoader.Load(SharedData.PathOf("tokenizers", "llama2-sentencepiece"))),
        ["llama2_llama2c_with_bos"] = new(() => TokenizerLoader.Load(SharedData.PathOf("tokenizers", "llama2-sentencepiece"))),
    };

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var section in Tokenizers.Keys)
        {
            var cases = Expected.Value[section]!["cases"]!.AsArray();
            for (var i = 0; i < cases.Count; i++)
                data.Add(section, i);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encode_SharedExpectation_MatchesIds(string section, int index)
    {
        var entry = Expected.Value[section]!["cases"]![index]!;
        var text = entry["text"]!.GetValue<string>();
        var expected = entry["ids"]!.AsArray().Select(i => i!.GetValue<int>()).ToArray();
        var tokenizer = Tokenizers[section].Value;
        var withBos = section.Contains("with_bos", StringComparison.Ordinal);

        var ids = tokenizer.Encode(text, addSpecialTokens: withBos);

        if (text.Length == 0 && section.Contains("mlnet", StringComparison.Ordinal))
        {
            // ML.NET returns [] for empty input; we follow HF (and llama2.c): BOS alone.
            Assert.Equal([1], ids);
            return;
        }

        Assert.Equal(expected, ids);
        var decoded = tokenizer.Decode(ids, skipSpecialTokens: withBos);
        Assert.Equal(text, decoded);
    }

    [Fact]
    public void Llama3_ApprovedTokenizerTest_MatchesEveryLine()
    {
        var tokenizer = TokenizerLoader.Load(SharedData.PathOf("tokenizers", "llama3"));
        var lines = File.ReadAllLines(SharedData.PathOf("naming", "LLaMA3_1Tests.TokenizerTest.approved.txt"));

        for (var i = 0; i + 1 < lines.Length; i += 2)
        {
            var expected = lines[i + 1].Split(", ").Select(int.Parse).ToArray();
            Assert.Equal(expected, tokenizer.Encode(lines[i]));
        }
    }

    [Fact]
    public void TinyLlama3Style_MatchesTorchtuneIds()
    {
        var tokenizer = HfTokenizer.Load(SharedData.PathOf("tokenizers", "tiny", "llama3-style"));
        var expected = JsonNode.Parse(File.ReadAllText(SharedData.PathOf("tokenizers", "tiny", "expected.json")))!["llama3_style_tiny"]!["cases"]!.AsArray();

        foreach (var entry in expected)
        {
            var text = entry!["text"]!.GetValue<string>();
            var ids = entry["ids_no_special"]!.AsArray().Select(i => i!.GetValue<int>()).ToArray();
            Assert.Equal(ids, tokenizer.Encode(text));
            Assert.Equal(text, tokenizer.Decode(ids));
        }

        // tokenizer_config.json names BOS/EOS tokens that are not in the vocabulary.
        Assert.Null(tokenizer.BosTokenId);
    }

    [Theory]
    [InlineData(" jeho", 101503)]
    [InlineData("ektedir", 101673)]
    [InlineData("lardan", 103084)]
    [InlineData(" Vi\u1EC7t", 101798)]
    public void Llama3_IgnoreMerges_MapsAVocabularyWordStraightToItsId(string word, int id)
    {
        // Words that are in the vocabulary but that plain merging splits into three tokens
        // (found by comparing against the same tokenizer.json with ignore_merges turned off).
        var tokenizer = HfTokenizer.Load(SharedData.PathOf("tokenizers", "llama3"));

        Assert.Equal([id], tokenizer.Encode(word));
    }

    [Fact]
    public void Qwen3_ListMergesFormat_RoundTripsMixedText()
    {
        var tokenizer = HfTokenizer.Load(SharedData.PathOf("tokenizers", "qwen3"));
        const string text = "Qwen3 问候: héllo wörld 12345 ☃ 👍🏽\n\tthe end<|im_end|>";

        var ids = tokenizer.Encode(text);

        Assert.Equal(151645, ids[^1]);
        Assert.Equal(text, tokenizer.Decode(ids));
        Assert.Equal(text[..^"<|im_end|>".Length], tokenizer.Decode(ids, skipSpecialTokens: true));
        // \p{N} alone: Qwen splits digits one by one.
        Assert.Equal(5, "12345".Select(c => tokenizer.Encode(c.ToString())).Count());
        Assert.Equal(tokenizer.Encode("1").Concat(tokenizer.Encode("2")), tokenizer.Encode("12"));
    }

    [Fact]
    public void Mistral_ByteFallback_EncodesUnknownCharactersAsBytes()
    {
        var tokenizer = HfTokenizer.Load(SharedData.PathOf("tokenizers", "mistral-v0.1"));

        var ids = tokenizer.Encode("ꙮ");

        // ꙮ (U+A66E) is not in the vocabulary: UTF-8 EA 99 AE → <0xEA> <0x99> <0xAE> after the ▁ prefix.
        Assert.Equal(["▁", "<0xEA>", "<0x99>", "<0xAE>"], ids.Select(id => tokenizer.IdToToken(id)));
        Assert.Equal("ꙮ", tokenizer.Decode(ids));
    }
}
