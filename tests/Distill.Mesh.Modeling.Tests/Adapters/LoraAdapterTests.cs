using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Adapters;

public class LoraAdapterTests
{
    /// <summary>An adapted tiny model whose B factors are random, so the adapter changes the output.</summary>
    private static CausalLanguageModel AdaptedModel(LoraConfig config, long seed = 31, string family = "llama")
    {
        var model = TinyModels.Create(family, seed);
        LoraAdapter.Attach(model, config, seed: seed + 1);
        using var generator = new Generator((ulong)seed + 2);
        using (torch.no_grad())
        {
            foreach (var (_, projection) in LoraAdapter.Adapted(model))
                projection.Lora!.B.weight!.normal_(0, 0.05, generator);
        }

        return model;
    }

    [Fact]
    public void Attach_FreshAdapter_ChangesNothingAndFreezesBase()
    {
        using var model = TinyModels.Create("llama", seed: 30);
        using var ids = TinyModels.RandomIds(1, 7, model.Config.VocabSize, seed: 1);
        using var before = model.Forward(ids);

        var paths = LoraAdapter.Attach(model, LoraConfig.For(4, 8, "q_proj", "v_proj"));

        Assert.Equal(["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"], paths);
        TensorAssert.Equal(before, model.Forward(ids));
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();
        Assert.Equal(8, trainable.Count);
        Assert.All(trainable, n => Assert.Contains(".lora_", n));
        // q_proj: A [4, 64] + B [64, 4]; v_proj: A [4, 64] + B [32, 4]; two layers.
        Assert.Equal(2 * (4 * 64 + 64 * 4 + 4 * 64 + 32 * 4), model.parameters().Where(p => p.requires_grad).Sum(p => p.numel()));
    }

    [Fact]
    public void Merge_EqualsUnmergedForward_AndUnmergeRestoresWeights()
    {
        using var model = AdaptedModel(LoraConfig.For(4, 16, "all-linear"));
        using var ids = TinyModels.RandomIds(2, 6, model.Config.VocabSize, seed: 2);
        var q = LoraAdapter.Adapted(model).First(a => a.Path.EndsWith("layers.1.self_attn.q_proj", StringComparison.Ordinal)).Module;
        using var original = q.Weight.detach().clone();
        using var unmerged = model.Forward(ids);

        LoraAdapter.Merge(model);
        using var merged = model.Forward(ids);

        TensorAssert.Close(unmerged, merged, atol: 1e-5);
        // Merged weight = W + (alpha / r) · B·A, checked in float64.
        var lora = q.Lora!;
        using var expected = original.to_type(ScalarType.Float64) + 16.0 / 4 * lora.B.weight!.to_type(ScalarType.Float64).matmul(lora.A.weight!.to_type(ScalarType.Float64));
        TensorAssert.Close(expected, q.Weight, atol: 1e-6);

        LoraAdapter.Unmerge(model);
        TensorAssert.Close(original, q.Weight, atol: 1e-6);
        TensorAssert.Close(unmerged, model.Forward(ids), atol: 1e-5); // float32 round-off of W + ΔW − ΔW
    }

    [Fact]
    public void AllLinear_TargetsEveryProjectionButTheHead()
    {
        using var model = TinyModels.Create("llama");

        var paths = LoraAdapter.Attach(model, LoraConfig.For(2, 2, "all-linear"));

        Assert.Equal(2 * 7, paths.Count);
        Assert.DoesNotContain("lm_head", paths);
    }

    [Fact]
    public void Save_WritesPeftKeysShapesAndConfig()
    {
        using var dir = new TempFolder();
        var config = LoraConfig.For(4, 8, "q_proj", "v_proj");
        config.RankPattern["v_proj"] = 2;
        config.AlphaPattern["model.layers.1.self_attn.q_proj"] = 32;
        config.BaseModelNameOrPath = "tiny-llama";
        using var model = AdaptedModel(config);

        LoraAdapter.Save(model, config, dir.Path);

        using var file = SafetensorsFile.Open(dir.Combine(LoraAdapter.WeightsFileName));
        var shapes = file.Tensors.ToDictionary(t => t.Name, t => string.Join("x", t.Shape));
        Assert.Equal(new Dictionary<string, string>
        {
            ["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] = "4x64",
            ["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"] = "64x4",
            ["base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight"] = "2x64",
            ["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"] = "32x2",
            ["base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"] = "4x64",
            ["base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"] = "64x4",
            ["base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight"] = "2x64",
            ["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"] = "32x2",
        }, shapes);
        var json = JsonNode.Parse(File.ReadAllText(dir.Combine(LoraAdapter.ConfigFileName)))!;
        Assert.Equal("LORA", json["peft_type"]!.GetValue<string>());
        Assert.Equal("CAUSAL_LM", json["task_type"]!.GetValue<string>());
        Assert.Equal(4, json["r"]!.GetValue<int>());
        Assert.Equal(8, json["lora_alpha"]!.GetValue<double>());
        Assert.Equal(["q_proj", "v_proj"], json["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(2, json["rank_pattern"]!["v_proj"]!.GetValue<int>());
        Assert.Equal(32, json["alpha_pattern"]!["model.layers.1.self_attn.q_proj"]!.GetValue<double>());
        Assert.Equal("tiny-llama", json["base_model_name_or_path"]!.GetValue<string>());
        var q1 = LoraAdapter.Adapted(model).Single(a => a.Path == "model.layers.1.self_attn.q_proj").Module.Lora!;
        Assert.Equal(8.0, q1.Scaling);
    }

    [Fact]
    public void Phi3_FusedProjections_TargetedByName_SaveWithPeftKeysAndReload()
    {
        using var dir = new TempFolder();
        // PEFT targets Phi-3's fused modules by their own names; one A/B pair spans q, k and v (or gate and up).
        var config = LoraConfig.For(4, 8, "qkv_proj", "gate_up_proj");
        using var model = AdaptedModel(config, seed: 33, family: "phi3");
        using var ids = TinyModels.RandomIds(1, 9, model.Config.VocabSize, seed: 34);
        using var expected = model.Forward(ids);

        LoraAdapter.Save(model, config, dir.Path);

        using (var file = SafetensorsFile.Open(dir.Combine(LoraAdapter.WeightsFileName)))
        {
            var shapes = file.Tensors.Where(t => t.Name.Contains(".layers.0.", StringComparison.Ordinal)).ToDictionary(t => t.Name, t => string.Join("x", t.Shape));
            // qkv_proj: (4 query + 2·2 kv heads) × 16 = 128 outputs; gate_up_proj: 2 × 96.
            Assert.Equal(new Dictionary<string, string>
            {
                ["base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight"] = "4x64",
                ["base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight"] = "128x4",
                ["base_model.model.model.layers.0.mlp.gate_up_proj.lora_A.weight"] = "4x64",
                ["base_model.model.model.layers.0.mlp.gate_up_proj.lora_B.weight"] = "192x4",
            }, shapes);
        }

        using var fresh = TinyModels.Create("phi3", seed: 33);
        LoraAdapter.Load(fresh, dir.Path);
        TensorAssert.Equal(expected, fresh.Forward(ids));
        using var all = TinyModels.Create("phi3", seed: 35);
        Assert.Equal(["down_proj", "gate_up_proj", "o_proj", "qkv_proj"], LoraAdapter.Attach(all, LoraConfig.For(2, 2, "all-linear")).Select(p => p.Split('.')[^1]).Distinct().Order());
    }

    [Fact]
    public void Load_SavedAdapter_ReproducesTheAdaptedModel()
    {
        using var dir = new TempFolder();
        var config = LoraConfig.For(4, 8, "q_proj", "v_proj", "down_proj");
        config.RankPattern["down_proj"] = 3;
        using var model = AdaptedModel(config);
        using var ids = TinyModels.RandomIds(1, 9, model.Config.VocabSize, seed: 3);
        using var expected = model.Forward(ids);
        LoraAdapter.Save(model, config, dir.Path);

        using var fresh = TinyModels.Create("llama", seed: 31);
        LoraAdapter.Load(fresh, dir.Path);

        TensorAssert.Equal(expected, fresh.Forward(ids));
    }

    [Fact]
    public void Load_KeysMatchingNoModule_IsAnErrorNotANoOp()
    {
        using var dir = new TempFolder();
        var config = LoraConfig.For(4, 8, "q_proj");
        using var model = AdaptedModel(config);
        LoraAdapter.Save(model, config, dir.Path);
        // The defect seen in public scripts: "...q_proj.weight.lora_A.weight" instead of "...q_proj.lora_A.weight".
        var renamed = LoraAdapter.Tensors(model).Select(kv => KeyValuePair.Create(kv.Key.Replace(".lora_", ".weight.lora_"), kv.Value)).ToList();
        SafetensorsWriter.Write(dir.Combine(LoraAdapter.WeightsFileName), renamed);

        using var fresh = TinyModels.Create("llama");
        var error = Assert.Throws<AdapterFormatException>(() => LoraAdapter.Load(fresh, dir.Path));

        Assert.Contains("'base_model.model.model.layers.0.self_attn.q_proj.weight.lora_A.weight' matches no module of the model", error.Message);
        Assert.Empty(LoraAdapter.Adapted(fresh));
    }

    [Fact]
    public void Load_WrongRankOrMissingFactor_NamesTheKey()
    {
        using var dir = new TempFolder();
        var config = LoraConfig.For(4, 8, "q_proj");
        using var model = AdaptedModel(config);
        LoraAdapter.Save(model, config, dir.Path);
        var tensors = LoraAdapter.Tensors(model).Where(kv => !kv.Key.Contains("layers.1.self_attn.q_proj.lora_B", StringComparison.Ordinal)).ToList();
        SafetensorsWriter.Write(dir.Combine(LoraAdapter.WeightsFileName), tensors);
        var json = JsonNode.Parse(File.ReadAllText(dir.Combine(LoraAdapter.ConfigFileName)))!;
        json["r"] = 8;
        File.WriteAllText(dir.Combine(LoraAdapter.ConfigFileName), json.ToJsonString());

        using var fresh = TinyModels.Create("llama");
        var error = Assert.Throws<AdapterFormatException>(() => LoraAdapter.Load(fresh, dir.Path));

        Assert.Contains("missing 'base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight'", error.Message);
        Assert.Contains("'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has shape [4, 64], expected [8, 64] (r = 8)", error.Message);
        Assert.Empty(LoraAdapter.Adapted(fresh));
    }

    [Fact]
    public void Training_AdamWOnLora_LowersLossAndLeavesBaseUntouched()
    {
        using var model = TinyModels.Create("llama", seed: 40);
        LoraAdapter.Attach(model, LoraConfig.For(8, 16, "all-linear"), seed: 41);
        model.train();
        using var ids = TinyModels.RandomIds(2, 16, model.Config.VocabSize, seed: 42);
        var baseBefore = model.named_parameters().Where(p => !p.parameter.requires_grad).ToDictionary(p => p.name, p => p.parameter.detach().clone());
        using var optimizer = torch.optim.AdamW(model.parameters().Where(p => p.requires_grad), lr: 1e-2);

        var losses = new List<double>();
        for (var step = 0; step < 20; step++)
        {
            using var scope = torch.NewDisposeScope();
            optimizer.zero_grad();
            var logits = model.Forward(ids.narrow(1, 0, 15));
            var loss = nn.functional.cross_entropy(logits.reshape(-1, model.Config.VocabSize), ids.narrow(1, 1, 15).reshape(-1));
            loss.backward();
            optimizer.step();
            losses.Add(loss.item<float>());
        }

        Assert.True(losses[^1] < losses[0] - 0.5, $"loss went {losses[0]:F3} → {losses[^1]:F3}");
        foreach (var (name, parameter) in model.named_parameters().Where(p => !p.parameter.requires_grad))
            TensorAssert.Equal(baseBefore[name], parameter, name);
    }

    [Fact]
    public void Config_UnsupportedFeatures_AreRejectedByName()
    {
        using var model = TinyModels.Create("llama");

        Assert.Contains("use_dora", Assert.Throws<AdapterFormatException>(() => LoraAdapter.Attach(model, new LoraConfig { UseDora = true })).Message);
        Assert.Contains("matches no module", Assert.Throws<AdapterFormatException>(() => LoraAdapter.Attach(model, LoraConfig.For(4, 4, "c_attn"))).Message);
    }

    [Fact]
    public void EmbeddingLora_FreshChangesNothing_MergesAsUnmerged_AndRoundTripsWithPeftKeys()
    {
        using var dir = new TempFolder();
        using var model = TinyModels.Create("llama", seed: 40);
        using var ids = TinyModels.RandomIds(2, 9, model.Config.VocabSize, seed: 2);
        using var before = model.Forward(ids);
        var config = LoraConfig.For(3, 6, "embed_tokens", "q_proj");

        Assert.Contains("model.embed_tokens", LoraAdapter.Attach(model, config, seed: 1));
        TensorAssert.Close(before, model.Forward(ids), atol: 0);
        var lora = Assert.Single(LoraAdapter.AdaptedEmbeddings(model)).Module.Lora!;
        using (torch.no_grad())
        {
            using var generator = new Generator(5);
            lora.A.normal_(0, 0.1, generator);
        }

        using var adapted = model.Forward(ids);
        Assert.True(TensorAssert.MaxAbsDiff(before, adapted) > 1e-3);
        Assert.Contains(model.named_parameters(), p => p.name == "model.embed_tokens.lora_embedding_A" && p.parameter.requires_grad);

        LoraAdapter.Save(model, config, dir.Path);
        using (var file = Distill.Mesh.Modeling.Checkpoints.SafetensorsFile.Open(Path.Combine(dir.Path, LoraAdapter.WeightsFileName)))
        {
            Assert.Equal([3L, 262], file.GetInfo("base_model.model.model.embed_tokens.lora_embedding_A").Shape);
            Assert.Equal([64L, 3], file.GetInfo("base_model.model.model.embed_tokens.lora_embedding_B").Shape);
        }

        // Merged (E + (α/r)·(B·A)ᵀ) gives what the unmerged adapter gives.
        var table = model.Body.EmbedTokens.Weight.clone();
        LoraAdapter.Merge(model);
        TensorAssert.Close(table + (lora.B.matmul(lora.A).t() * 2.0), model.Body.EmbedTokens.Weight, atol: 1e-6);
        TensorAssert.Close(adapted, model.Forward(ids), atol: 1e-5);
        LoraAdapter.Unmerge(model);

        using var reloaded = TinyModels.Create("llama", seed: 40);
        LoraAdapter.Load(reloaded, dir.Path);
        TensorAssert.Close(adapted, reloaded.Forward(ids), atol: 1e-6);

        var tiedConfig = TinyModels.Config("llama");
        tiedConfig.TieWordEmbeddings = true;
        using var tied = TinyModels.Create("llama", seed: 41, config: tiedConfig);
        Assert.Contains("ties its output head", Assert.Throws<AdapterFormatException>(() => LoraAdapter.Attach(tied, config)).Message);
    }

    [Fact]
    public void Validator_ChecksLinearAndEmbeddingFactorsAgainstTheBaseShapes()
    {
        using var dir = new TempFolder();
        using var model = TinyModels.Create("llama", seed: 42);
        model.SavePretrained(dir.Combine("base"));
        var config = LoraConfig.For(2, 4, "embed_tokens", "v_proj");
        LoraAdapter.Attach(model, config);
        LoraAdapter.Save(model, config, dir.Combine("good"));
        using var checkpoint = Distill.Mesh.Modeling.Checkpoints.SafetensorsCheckpoint.Open(dir.Combine("base"));
        var shapes = AdapterValidator.ShapesOf(checkpoint);

        Assert.Empty(AdapterValidator.Check(dir.Combine("good"), shapes));

        // The embedding factors swapped (A is [r, vocab], B [hidden, r]), and the config claiming r = 3.
        Directory.CreateDirectory(dir.Combine("bad"));
        var tensors = LoraAdapter.Tensors(model).Select(kv => kv.Key.EndsWith("lora_embedding_A", StringComparison.Ordinal)
            ? KeyValuePair.Create(kv.Key, kv.Value.t().contiguous()) : kv).ToList();
        Distill.Mesh.Modeling.Checkpoints.SafetensorsWriter.Write(Path.Combine(dir.Combine("bad"), LoraAdapter.WeightsFileName), tensors);
        LoraAdapter.WriteConfig(config, dir.Combine("bad"));
        var problems = AdapterValidator.Check(dir.Combine("bad"), shapes);
        Assert.Contains("'base_model.model.model.embed_tokens.lora_embedding_A' has shape [262, 2], expected [2, 262] (module [262, 64], r = 2)", problems);

        config.TargetModules = System.Text.Json.JsonSerializer.SerializeToElement("all-linear");
        LoraAdapter.WriteConfig(config, dir.Combine("bad"));
        Assert.Contains(AdapterValidator.Check(dir.Combine("bad"), shapes), p => p.Contains("does not select 'model.embed_tokens'", StringComparison.Ordinal));
    }
}
