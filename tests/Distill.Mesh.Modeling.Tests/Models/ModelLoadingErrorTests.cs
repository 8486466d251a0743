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

        Assert.Contains("model_type 'gpt_neox' is not supported (supported: llama, mistral, mixtral, qwen2)", error.Message);
    }

    [Theory]
    [InlineData("\"num_key_value_heads\": 3", "must be a multiple of num_key_value_heads")]
    [InlineData("\"hidden_size\": 0", "hidden_size must be positive")]
    [InlineData("\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}", "rope_scaling type 'yarn' is not supported")]
    [InlineData("\"hidden_act\": \"gelu\"", "hidden_act 'gelu' is not supported")]
    public void Parse_InconsistentConfig_NamesTheField(string field, string expected)
    {
        var root = JsonNode.Parse(File.ReadAllText(TinyModels.ConfigPath("tiny-llama.json")))!.AsObject();
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
