using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Testing;
using Microsoft.ML.Tokenizers;

namespace Distill.Mesh.Modeling.Tests.Tokenization;

public class TokenizerBehaviourTests
{
    private static readonly string[] Corpus =
    [
        "Hello world", "  leading and trailing spaces  ", "tabs\tand\nnewlines\r\n\r\n", "don't won't I'm we'll they've",
        "numbers 1234567 3.14159 -42", "émigré naïve façade", "日本語のテキスト", "emoji 👍🏽🎉 mix", "symbols !@#$%^&*()_+-=[]{}",
        "CamelCaseWordsAndURLs https://example.com/a?b=c", "    indented code\n        more", "ünïcödé  double  spaces",
    ];

    [Fact]
    public void Gpt2_MatchesMicrosoftMlTokenizersOnACorpus()
    {
        var ours = HfTokenizer.Load(SharedData.PathOf("tokenizers", "gpt2"));
        // An independent implementation of the same byte-level BPE, from vocab.json + merges.txt.
        var oracle = BpeTokenizer.Create(new BpeOptions(SharedData.PathOf("tokenizers", "gpt2", "vocab.json"), SharedData.PathOf("tokenizers", "gpt2", "merges.txt"))
        {
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(new System.Text.RegularExpressions.Regex(
                @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"), null),
        });

        foreach (var text in Corpus)
            Assert.Equal(oracle.EncodeToIds(text), ours.Encode(text));
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    [InlineData("mistral-v0.1")]
    public void DecodeOfEncode_ReturnsTheText(string name)
    {
        var tokenizer = TokenizerLoader.Load(SharedData.PathOf("tokenizers", name));
        foreach (var text in Corpus)
            Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
    }

    [Fact]
    public void Hash_IsStableAndSeparatesTokenizers()
    {
        var llama3 = TokenizerLoader.Load(SharedData.PathOf("tokenizers", "llama3")).Hash;
        var again = TokenizerLoader.Load(SharedData.PathOf("tokenizers", "llama3")).Hash;
        var qwen3 = TokenizerLoader.Load(SharedData.PathOf("tokenizers", "qwen3")).Hash;
        var tinyQwen = TokenizerLoader.Load(SharedData.PathOf("tokenizers", "tiny", "qwen2-style", "tiny_bpe_tokenizer.json")).Hash;

        Assert.Equal(llama3, again);
        Assert.Matches("^[0-9a-f]{64}$", llama3);
        Assert.Equal(3, new[] { llama3, qwen3, tinyQwen }.Distinct().Count());
    }

    [Fact]
    public void Hash_IgnoresMergeSpellingButNotVocabulary()
    {
        using var dir = new TempFolder();
        var source = JsonNode.Parse(File.ReadAllText(SharedData.PathOf("tokenizers", "tiny", "qwen2-style", "tiny_bpe_tokenizer.json")))!;
        var original = HfTokenizer.Load(SharedData.PathOf("tokenizers", "tiny", "qwen2-style", "tiny_bpe_tokenizer.json")).Hash;

        // Same merges written as ["a", "b"] pairs instead of "a b" strings: same tokenizer.
        var pairs = source.DeepClone();
        var merges = pairs["model"]!["merges"]!.AsArray();
        for (var i = 0; i < merges.Count; i++)
        {
            var parts = merges[i]!.GetValue<string>().Split(' ');
            merges[i] = new JsonArray(parts[0], parts[1]);
        }

        File.WriteAllText(dir.Combine("pairs.json"), pairs.ToJsonString());
        Assert.Equal(original, HfTokenizer.Load(dir.Combine("pairs.json")).Hash);

        // One extra added token: a different tokenizer.
        var extended = source.DeepClone();
        extended["added_tokens"]!.AsArray().Add(JsonNode.Parse("{\"id\": 2003, \"content\": \"<|extra|>\", \"special\": true}"));
        File.WriteAllText(dir.Combine("extended.json"), extended.ToJsonString());
        Assert.NotEqual(original, HfTokenizer.Load(dir.Combine("extended.json")).Hash);
    }

    [Theory]
    [InlineData("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "model type 'Unigram' is not supported")]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}", "pre_tokenizer 'BertPreTokenizer' is not supported")]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}", "merge #0 'a b' uses a token that is not in the vocabulary")]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"ab\"]}}", "malformed merge entry")]
    [InlineData("{\"model\": ", "not valid JSON")]
    public void Load_MalformedTokenizer_SaysWhatIsWrong(string json, string expected)
    {
        using var dir = new TempFolder();
        File.WriteAllText(dir.Combine("tokenizer.json"), json);

        var error = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.Load(dir.Path));

        Assert.Contains(expected, error.Message);
        Assert.Contains(dir.Combine("tokenizer.json"), error.Message);
    }

    [Fact]
    public void Mistral_AddsBosFromTemplateAndKnowsSpecialIds()
    {
        var tokenizer = TokenizerLoader.Load(SharedData.PathOf("tokenizers", "mistral-v0.1"));

        Assert.Equal(1, tokenizer.BosTokenId);
        Assert.Equal(2, tokenizer.EosTokenId);
        Assert.Equal([1], tokenizer.Encode("", addSpecialTokens: true));
        Assert.Empty(tokenizer.Encode(""));
        Assert.Equal(32000, tokenizer.VocabularySize);
    }
}
