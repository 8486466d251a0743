using Distill.Mesh.Specs.Storage;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Checkpoints;

namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>
/// Writes a self-contained byte-level tokenizer (256 byte tokens, no merges, plus chat and
/// control tokens) in HF's tokenizer.json layout, so tests and demos have a real tokenizer for the
/// models they create without a model hub. Any UTF-8 text round-trips through it.
/// </summary>
public static class ByteTokenizerBuilder
{
    /// <summary>The added tokens, with ids 256 onward.</summary>
    public static readonly string[] SpecialTokens =
        ["<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>", "<|pad|>", "<|reserved_0|>"];

    /// <summary>Vocabulary size: 256 bytes and the special tokens.</summary>
    public static int VocabularySize => 256 + SpecialTokens.Length;

    // A ChatML template in Jinja, so HF tools render conversations the same way we do.
    private const string ChatTemplate =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
        + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /// <summary>Writes tokenizer.json, tokenizer_config.json and generation_config.json into <paramref name="folder"/>.</summary>
    public static void Write(string folder)
    {
        Directory.CreateDirectory(folder);
        var vocab = new JsonObject();
        for (var b = 0; b < 256; b++)
            vocab[ByteLevelAlphabet.Encode((byte)b).ToString()] = b;
        var added = new JsonArray();
        for (var i = 0; i < SpecialTokens.Length; i++)
        {
            added.Add(new JsonObject
            {
                ["id"] = 256 + i, ["content"] = SpecialTokens[i], ["single_word"] = false, ["lstrip"] = false,
                ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            });
        }

        var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
        var tokenizer = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = byteLevel.DeepClone(),
            ["post_processor"] = byteLevel.DeepClone(),
            ["decoder"] = byteLevel.DeepClone(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocab, ["merges"] = new JsonArray(),
            },
        };
        var config = new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["bos_token"] = "<|begin_of_text|>",
            ["eos_token"] = "<|end_of_text|>",
            ["pad_token"] = "<|pad|>",
            ["add_bos_token"] = true,
            ["add_eos_token"] = false,
            ["model_max_length"] = 4096,
            ["chat_template"] = ChatTemplate,
        };
        var generation = new JsonObject { ["bos_token_id"] = 256, ["eos_token_id"] = new JsonArray(257, 259), ["pad_token_id"] = 260 };

        var options = new JsonSerializerOptions { WriteIndented = true };
        AtomicFile.WriteAllText(Path.Combine(folder, "tokenizer.json"), tokenizer.ToJsonString(options));
        AtomicFile.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config.ToJsonString(options));
        AtomicFile.WriteAllText(Path.Combine(folder, "generation_config.json"), generation.ToJsonString(options));
    }
}
