using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Extraction;
using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Models;

public class CausalLanguageModelTests
{
    /// <summary>Every family with a tiny config.</summary>
    public static TheoryData<string> Families => new(TinyModels.Families);

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
    [MemberData(nameof(Families))]
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
    [MemberData(nameof(Families))]
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
    [MemberData(nameof(Families))]
    public void SavedConfig_HasOnlyHuggingFaceKeys(string family)
    {
        // Derived values (bias flags, expert counts) are ours; config.json keeps HF's snake_case keys.
        var json = System.Text.Json.Nodes.JsonNode.Parse(ModelConfigs.ToJson(TinyModels.Config(family)))!.AsObject();
        Assert.All(json.Select(p => p.Key), key => Assert.Matches("^[a-z0-9_]+$", key));
        Assert.Equal(family, json["model_type"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("mixtral", "llama")]
    [InlineData("qwen3_moe", "qwen3")]
    [InlineData("qwen2_moe", "qwen2")]
    public void Moe_WithIdenticalExperts_EqualsDenseModel(string moeFamily, string denseFamily)
    {
        // The same config under the dense model_type; for Qwen-MoE every layer sparse, the top-k
        // renormalised and the experts as wide as the dense MLP.
        var json = System.Text.Json.Nodes.JsonNode.Parse(ModelConfigs.ToJson(TinyModels.Config(moeFamily)))!.AsObject();
        if (json.ContainsKey("moe_intermediate_size"))
        {
            json["decoder_sparse_step"] = 1;
            json["mlp_only_layers"] = new System.Text.Json.Nodes.JsonArray();
            json["norm_topk_prob"] = true;
            json["intermediate_size"] = json["moe_intermediate_size"]!.DeepClone();
        }

        var moeConfig = ModelConfigs.Parse(json.ToJsonString());
        json["model_type"] = denseFamily;
        var denseConfig = ModelConfigs.Parse(json.ToJsonString());
        using var dense = TinyModels.Create(denseFamily, seed: 12, config: denseConfig);
        using var moe = TinyModels.Create(moeFamily, seed: 13, config: moeConfig);

        // Copy every shared weight; each expert gets the dense MLP (Mixtral: w1 = gate, w3 = up,
        // w2 = down); the routers keep their random weights, which must not matter once the experts
        // agree; Qwen2-MoE's shared expert is silenced by a zero down_proj.
        var denseWeights = dense.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (torch.no_grad())
        {
            foreach (var (name, parameter) in moe.named_parameters())
            {
                if (name.Contains(".shared_expert.down_proj.", StringComparison.Ordinal))
                    parameter.zero_();
                else if (ExpertNaming.ParseExpert(name) is { } expert)
                    parameter.copy_(denseWeights[$"model.layers.{expert.Layer}.mlp.{ExpertNaming.Part(expert.Part, ExpertStyle.QwenMoe)}.weight"]);
                else if (denseWeights.TryGetValue(name, out var source))
                    parameter.copy_(source);
                else
                    Assert.Matches(@"\.(block_sparse_moe|mlp)\.(gate|shared_expert\.(gate|up)_proj|shared_expert_gate)\.weight$", name);
            }
        }

        using var ids = TinyModels.RandomIds(2, 10, denseConfig.VocabSize, seed: 14);
        TensorAssert.Close(dense.Forward(ids), moe.Forward(ids), atol: 1e-5);
    }

    [Fact]
    public void Gemma2_TeacherRowsFromHiddenStates_AreTheSoftCappedLogits()
    {
        // Teachers and the chunked loss project hidden·Wᵀ themselves: the soft-cap must follow.
        using var model = TinyModels.Create("gemma2", seed: 19);
        using var ids = TinyModels.RandomIds(1, 7, model.Config.VocabSize, seed: 20);
        using var logits = model.Forward(ids)[0];
        using var hidden = model.Hidden(ids)[0];

        using var rows = new ProjectedTeacherRows(hidden, model.OutputWeight, softcap: model.Config.FinalLogitSoftcap);
        var block = (DenseTeacherLogits)rows.Block(0, 7);

        TensorAssert.Close(logits, block.Logits, atol: 1e-6);
        Assert.True(logits.abs().max().item<float>() < 3, "capped at final_logit_softcapping 3");
        using var raw = hidden.matmul(model.OutputWeight.t());
        Assert.True(TensorAssert.MaxAbsDiff(raw, logits) > 1e-3, "the cap should change these logits");
    }

    [Fact]
    public void QwenMoe_SparseLayers_FollowMlpOnlyLayersAndTheSparseStep()
    {
        // HF: sparse unless listed in mlp_only_layers, and only where (layer + 1) % decoder_sparse_step == 0.
        var config = (Qwen2MoeConfig)TinyModels.Config("qwen2_moe");
        config.NumHiddenLayers = 6;
        config.DecoderSparseStep = 2;
        config.MlpOnlyLayers = [3];
        using var model = new CausalLanguageModel(config, ScalarType.Float32, torch.device("meta"));

        var sparse = Enumerable.Range(0, 6).Where(l => model.ParameterShapes().Any(p => p.Name == $"model.layers.{l}.mlp.gate.weight")).ToArray();
        var dense = Enumerable.Range(0, 6).Where(l => model.ParameterShapes().Any(p => p.Name == $"model.layers.{l}.mlp.gate_proj.weight")).ToArray();

        Assert.Equal([1, 5], sparse);
        Assert.Equal([0, 2, 3, 4], dense);
        Assert.Equal([32L, 64], model.ParameterShapes().Single(p => p.Name == "model.layers.1.mlp.experts.3.gate_proj.weight").Shape);
        Assert.Equal([128L, 64], model.ParameterShapes().Single(p => p.Name == "model.layers.0.mlp.gate_proj.weight").Shape);
    }

    [Fact]
    public void Qwen3_SlidingWindow_FollowsLayerTypesOnlyWithUseSlidingWindow()
    {
        var config = (Qwen3Config)TinyModels.Config("qwen3");
        config.NumHiddenLayers = 4;
        config.MaxWindowLayers = 2;
        // HF derives layer_types from max_window_layers when absent ...
        Assert.Equal(new int?[] { null, null, 6, 6 }, Enumerable.Range(0, 4).Select(config.SlidingWindowOf));
        // ... an explicit list wins ...
        config.LayerTypes = ["sliding_attention", "full_attention", "sliding_attention", "full_attention"];
        Assert.Equal(new int?[] { 6, null, 6, null }, Enumerable.Range(0, 4).Select(config.SlidingWindowOf));
        // ... and without use_sliding_window HF sets sliding_window to None.
        config.UseSlidingWindow = false;
        Assert.All(Enumerable.Range(0, 4), l => Assert.Null(config.SlidingWindowOf(l)));

        config.LayerTypes = ["full_attention", "chunked_attention", "full_attention", "full_attention"];
        Assert.Contains("layer_types entry 'chunked_attention' is not supported", Assert.Throws<ModelConfigException>(config.Validate).Message);
        config.LayerTypes = ["full_attention"];
        Assert.Contains("layer_types has 1 entries but num_hidden_layers is 4", Assert.Throws<ModelConfigException>(config.Validate).Message);
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
