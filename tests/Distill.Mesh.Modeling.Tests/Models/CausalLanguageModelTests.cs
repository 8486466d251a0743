using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Models;

public class CausalLanguageModelTests
{
    [Fact]
    public void Build_Llama32_1B_OnMeta_MatchesApprovedNameAndShapeList()
    {
        var config = ModelConfigs.Load(TinyModels.ConfigPath("llama-3.2-1b.json"));
        using var model = new CausalLanguageModel(config, ScalarType.BFloat16, torch.device("meta"));

        var lines = model.ParameterShapes().Select((p, i) => $"{i}: {p.Name} shape: [{string.Join(", ", p.Shape)}]");

        var approved = File.ReadAllLines(SharedData.PathOf("naming", "LLaMA3_2Tests.Llama_3_2_1b_ShapeTest.approved.txt"));
        Assert.Equal(approved, lines);
        Assert.Equal(1_235_814_400, model.ParameterCount());
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("mistral")]
    [InlineData("mixtral")]
    public void SaveAndLoad_EachFamily_GivesIdenticalLogits(string family)
    {
        using var dir = new TempFolder();
        using var model = TinyModels.Create(family, seed: 3);
        using var ids = TinyModels.RandomIds(2, 9, model.Config.VocabSize, seed: 4);
        using var expected = model.Forward(ids);

        model.SavePretrained(dir.Path);
        using var loaded = CausalLanguageModel.FromPretrained(dir.Path);
        using var actual = loaded.Forward(ids);

        TensorAssert.Equal(expected, actual);
        Assert.Equal(model.Config.GetType(), loaded.Config.GetType());
    }

    [Fact]
    public void SavePretrained_AboveShardSize_WritesIndexAndLoadsBack()
    {
        using var dir = new TempFolder();
        using var model = TinyModels.Create("llama", seed: 5);
        using var ids = TinyModels.RandomIds(1, 6, model.Config.VocabSize, seed: 6);
        using var expected = model.Forward(ids);

        model.SavePretrained(dir.Path, maxShardBytes: 40_000);

        Assert.True(File.Exists(dir.Combine(SafetensorsCheckpoint.IndexFileName)));
        Assert.True(Directory.GetFiles(dir.Path, "model-*-of-*.safetensors").Length > 1);
        using var loaded = CausalLanguageModel.FromPretrained(dir.Path);
        TensorAssert.Equal(expected, loaded.Forward(ids));
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("mistral")]
    [InlineData("mixtral")]
    public void KvCache_PrefillThenSteps_EqualsFullForward(string family)
    {
        using var model = TinyModels.Create(family, seed: 7);
        using var ids = TinyModels.RandomIds(2, 12, model.Config.VocabSize, seed: 8);
        using var full = model.Forward(ids);

        using var cache = model.NewCache();
        var pieces = new List<Tensor>
        {
            model.Forward(ids.narrow(1, 0, 5), cache: cache),
            model.Forward(ids.narrow(1, 5, 3), cache: cache), // a multi-token step on top of a cache
        };
        for (var t = 8; t < 12; t++)
            pieces.Add(model.Forward(ids.narrow(1, t, 1), cache: cache));
        using var incremental = torch.cat(pieces, 1);

        Assert.Equal(12, cache.Length);
        TensorAssert.Close(full, incremental, atol: 1e-5);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("mixtral")]
    public void Forward_LeftPaddedBatch_MatchesUnpaddedSequences(string family)
    {
        using var model = TinyModels.Create(family, seed: 9);
        using var a = TinyModels.RandomIds(1, 7, model.Config.VocabSize, seed: 10);
        using var b = TinyModels.RandomIds(1, 4, model.Config.VocabSize, seed: 11);
        using var expectedA = model.Forward(a);
        using var expectedB = model.Forward(b);

        using var padded = torch.cat([a, torch.cat([torch.zeros(1, 3, dtype: ScalarType.Int64), b], 1)], 0);
        using var mask = torch.tensor(new long[,] { { 1, 1, 1, 1, 1, 1, 1 }, { 0, 0, 0, 1, 1, 1, 1 } });
        using var logits = model.Forward(padded, mask);

        Assert.False(logits.isnan().any().item<bool>());
        TensorAssert.Close(expectedA, logits.narrow(0, 0, 1), atol: 1e-5);
        TensorAssert.Close(expectedB, logits.narrow(0, 1, 1).narrow(1, 3, 4), atol: 1e-5);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("mistral")]
    [InlineData("mixtral")]
    public void SavedConfig_HasOnlyHuggingFaceKeys(string family)
    {
        // Derived values (bias flags, expert counts) are ours; config.json keeps HF's snake_case keys.
        var json = System.Text.Json.Nodes.JsonNode.Parse(ModelConfigs.ToJson(TinyModels.Config(family)))!.AsObject();
        Assert.All(json.Select(p => p.Key), key => Assert.Matches("^[a-z0-9_]+$", key));
        Assert.Equal(family, json["model_type"]!.GetValue<string>());
    }

    [Fact]
    public void Mixtral_WithIdenticalExperts_EqualsDenseModel()
    {
        var mixtralConfig = (MixtralConfig)TinyModels.Config("mixtral");
        var llamaConfig = ModelConfigs.Parse(ModelConfigs.ToJson(mixtralConfig).Replace("\"mixtral\"", "\"llama\""));
        using var dense = TinyModels.Create("llama", seed: 12, config: llamaConfig);
        using var moe = TinyModels.Create("mixtral", seed: 13, config: mixtralConfig);

        // Copy every shared weight; each expert gets the dense MLP (w1 = gate, w3 = up, w2 = down);
        // the router keeps its random weights, which must not matter once the experts agree.
        var denseWeights = dense.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (torch.no_grad())
        {
            foreach (var (name, parameter) in moe.named_parameters())
            {
                var source = name.Contains(".block_sparse_moe.experts.")
                    ? ExpertSource(name)
                    : name.Contains(".block_sparse_moe.gate.") ? null : name;
                if (source is not null)
                    parameter.copy_(denseWeights[source]);
            }
        }

        using var ids = TinyModels.RandomIds(2, 10, llamaConfig.VocabSize, seed: 14);
        TensorAssert.Close(dense.Forward(ids), moe.Forward(ids), atol: 1e-5);

        static string ExpertSource(string name)
        {
            var layer = name[..name.IndexOf(".block_sparse_moe", StringComparison.Ordinal)];
            var projection = name.Split('.')[^2] switch { "w1" => "gate_proj", "w2" => "down_proj", _ => "up_proj" };
            return $"{layer}.mlp.{projection}.weight";
        }
    }

    [Fact]
    public void Mistral_SlidingWindow_IgnoresTokensBeyondTheWindow()
    {
        var config = (MistralConfig)TinyModels.Config("mistral");
        config.NumHiddenLayers = 1;
        using var model = TinyModels.Create("mistral", seed: 15, config: config);
        using var ids = TinyModels.RandomIds(1, 12, config.VocabSize, seed: 16);
        using var changed = ids.clone();
        changed[0, 0] = torch.tensor((ids[0, 0].item<long>() + 1) % config.VocabSize);

        using var before = model.Forward(ids);
        using var after = model.Forward(changed);

        // One layer with window 6: position t sees tokens t-5..t, so positions ≥ 6 ignore token 0.
        TensorAssert.Close(before.narrow(1, 6, 6), after.narrow(1, 6, 6), atol: 1e-6);
        Assert.True(TensorAssert.MaxAbsDiff(before.narrow(1, 5, 1), after.narrow(1, 5, 1)) > 1e-4);
    }

    [Fact]
    public void Forward_BFloat16_IsCloseToFloat32()
    {
        using var dir = new TempFolder();
        using var model = TinyModels.Create("llama", seed: 17);
        model.SavePretrained(dir.Path);
        using var bf16 = CausalLanguageModel.FromPretrained(dir.Path, ScalarType.BFloat16);
        using var ids = TinyModels.RandomIds(1, 8, model.Config.VocabSize, seed: 18);

        using var reference = model.Forward(ids).log_softmax(-1);
        using var reduced = bf16.Forward(ids).to_type(ScalarType.Float32).log_softmax(-1);

        Assert.Equal(ScalarType.BFloat16, bf16.DType);
        TensorAssert.Close(reference, reduced, atol: 0.1);
    }

    [Fact]
    public void RotaryEmbedding_Llama3Scaling_MatchesHandComputedFrequencies()
    {
        var config = ModelConfigs.Load(TinyModels.ConfigPath("llama-3.2-1b.json"));
        var rotary = new Modules.RotaryEmbedding(config);

        // theta 500000, head_dim 64: i = 0 is high-frequency (kept), i = 31 low-frequency (÷ 32),
        // i = 16 lies in the blended band: wavelength 4442.88, smooth 0.281283.
        Assert.Equal(1.0, rotary.InverseFrequencies[0], 1e-12);
        Assert.Equal(9.41830672543491e-08, rotary.InverseFrequencies[31], 1e-20);
        Assert.Equal(4.2955679655936815e-4, rotary.InverseFrequencies[16], 1e-16);
    }
}
