using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Models;

public class ModelLoadingErrorTests
{
    [Fact]
    public void Parse_UnknownModelType_ListsSupportedFamilies()
    {
        var error = Assert.Throws<ModelConfigException>(() => ModelConfigs.Parse("{\"model_type\": \"gpt_neox\"}"));

        Assert.Contains("model_type 'gpt_neox' is not supported (supported: gemma2, gemma3_text, llama, mistral, mixtral, phi3, qwen2, qwen2_moe, qwen3, qwen3_moe)", error.Message);
    }

    [Theory]
    [InlineData("\"num_key_value_heads\": 3", "must be a multiple of num_key_value_heads")]
    [InlineData("\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}", "rope_scaling type 'yarn' is not supported")]
    [InlineData("\"hidden_act\": \"gelu\"", "hidden_act 'gelu' is not supported")]
    [InlineData("\"hidden_size\": 0", "hidden_size must be in [1, 65536] (got 0)")]
    [InlineData("\"num_hidden_layers\": 100000", "num_hidden_layers must be in [1, 1024] (got 100000)")]
    [InlineData("\"vocab_size\": 2147483647", "vocab_size must be in [1, 4194304] (got 2147483647)")]
    [InlineData("\"max_position_embeddings\": 2000000000", "max_position_embeddings must be in")]
    [InlineData("\"rope_theta\": \"NaN\"", "must be finite and positive")]
    [InlineData("\"rms_norm_eps\": \"Infinity\"", "must be finite and positive")]
    [InlineData("\"model_type\": 5", "'model_type' must be a string (got 5)")]
    [InlineData("\"num_hidden_layers\": \"many\"", "num_hidden_layers")]
    public void Parse_InconsistentConfig_NamesTheField(string field, string expected)
    {
        var root = JsonNode.Parse(File.ReadAllText(TinyModels.ConfigPath("tiny-llama.json")))!.AsObject();
        foreach (var (key, value) in JsonNode.Parse($"{{{field}}}")!.AsObject().ToList())
            root[key] = value?.DeepClone();

        var error = Assert.Throws<ModelConfigException>(() => ModelConfigs.Parse(root.ToJsonString()));

        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData("phi3", "\"partial_rotary_factor\": 0", "partial_rotary_factor must be in (0, 1] (got 0)")]
    [InlineData("phi3", "\"partial_rotary_factor\": 0.5625", "the rotated part of each head (9 of head_dim 16) must be even")]
    [InlineData("qwen3_moe", "\"num_experts_per_tok\": 5", "num_experts_per_tok (5) exceeds num_experts (4)")]
    [InlineData("qwen3_moe", "\"decoder_sparse_step\": 0", "decoder_sparse_step must be in [1, 1024] (got 0)")]
    [InlineData("qwen2_moe", "\"mlp_only_layers\": [1, 3]", "mlp_only_layers entry 3 is outside the 3 layers")]
    [InlineData("qwen2_moe", "\"shared_expert_intermediate_size\": -1", "shared_expert_intermediate_size must be in")]
    [InlineData("qwen3", "\"layer_types\": [\"full_attention\"]", "layer_types has 1 entries but num_hidden_layers is 2")]
    [InlineData("gemma2", "\"final_logit_softcapping\": -1", "final_logit_softcapping must be finite and positive or null (got -1)")]
    [InlineData("gemma3_text", "\"hidden_activation\": \"relu\"", "hidden_act 'relu' is not supported")]
    [InlineData("gemma3_text", "\"sliding_window_pattern\": 0", "sliding_window_pattern must be in [1, 1024] (got 0)")]
    public void Parse_InconsistentFamilyField_NamesTheField(string family, string field, string expected)
    {
        var root = JsonNode.Parse(File.ReadAllText(TinyModels.ConfigPath($"tiny-{family}.json")))!.AsObject();
        foreach (var (key, value) in JsonNode.Parse($"{{{field}}}")!.AsObject().ToList())
            root[key] = value?.DeepClone();

        var error = Assert.Throws<ModelConfigException>(() => ModelConfigs.Parse(root.ToJsonString()));

        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void FromPretrained_MissingUnexpectedAndMisshapedKeys_AreAllNamed()
    {
        using var dir = new TempFolder();
        using var model = TinyModels.Create("llama");
        model.SavePretrained(dir.Path);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        using (var checkpoint = SafetensorsCheckpoint.Open(dir.Path))
        {
            foreach (var name in checkpoint.Names)
            {
                if (name == "model.norm.weight")
                    continue; // missing
                var tensor = checkpoint.ReadTensor(name);
                tensors.Add(KeyValuePair.Create(name == "lm_head.weight" ? "lm_head.weights" : name,
                    name == "model.layers.1.self_attn.k_proj.weight" ? tensor.narrow(0, 0, 16).contiguous() : tensor));
            }
        }

        SafetensorsCheckpoint.Save(dir.Path, tensors);

        var error = Assert.Throws<CheckpointFormatException>(() => CausalLanguageModel.FromPretrained(dir.Path));
        Assert.Contains("missing keys (2): lm_head.weight, model.norm.weight", error.Message);
        Assert.Contains("unexpected keys (1): lm_head.weights", error.Message);
        Assert.Contains("model.layers.1.self_attn.k_proj.weight: checkpoint [16, 64], model [32, 64]", error.Message);
    }

    [Theory]
    [InlineData("vocab_size", 100000, "model.embed_tokens.weight is [262, 64] but config.json says vocab_size 100000")]
    [InlineData("num_hidden_layers", 7, "the checkpoint has 2 decoder layers but config.json says num_hidden_layers 7")]
    public void FromPretrained_AConfigThatDoesNotDescribeTheWeights_IsRefusedBeforeAllocating(string field, int value, string expected)
    {
        using var dir = new TempFolder();
        using (var model = TinyModels.Create("llama"))
            model.SavePretrained(dir.Path);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "config.json")))!.AsObject();
        config[field] = value;
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), config.ToJsonString());

        var error = Assert.Throws<CheckpointFormatException>(() => CausalLanguageModel.FromPretrained(dir.Path));

        Assert.Contains("config.json does not describe these weights", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void FromPretrained_ACheckpointWithoutTheEmbedding_IsRefusedBeforeAllocating()
    {
        using var dir = new TempFolder();
        using (var model = TinyModels.Create("llama"))
            model.SavePretrained(dir.Path);
        SafetensorsCheckpoint.Save(dir.Path, [KeyValuePair.Create("model.norm.weight", torch.ones(64))]);

        var error = Assert.Throws<CheckpointFormatException>(() => CausalLanguageModel.FromPretrained(dir.Path));

        Assert.Contains("the checkpoint has no model.embed_tokens.weight", error.Message);
        Assert.Contains("the checkpoint has 0 decoder layers but config.json says num_hidden_layers 2", error.Message);
    }

    [Fact]
    public void FromPretrained_TiedModelWithCopiedHead_LoadsLikeHf()
    {
        using var dir = new TempFolder();
        using var model = TinyModels.Create("qwen2");
        model.SavePretrained(dir.Path);
        using (var checkpoint = SafetensorsCheckpoint.Open(dir.Path))
        {
            var tensors = checkpoint.Names.Select(n => KeyValuePair.Create(n, checkpoint.ReadTensor(n))).ToList();
            tensors.Add(KeyValuePair.Create("lm_head.weight", checkpoint.ReadTensor("model.embed_tokens.weight")));
            checkpoint.Dispose();
            SafetensorsCheckpoint.Save(dir.Path, tensors);
        }

        using var loaded = CausalLanguageModel.FromPretrained(dir.Path);

        Assert.Null(loaded.LmHead);
    }
}
