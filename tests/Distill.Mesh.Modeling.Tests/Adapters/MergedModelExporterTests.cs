using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tests.Models;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Adapters;

public sealed class MergedModelExporterTests : IDisposable
{
    private readonly TempFolder _dir = new();

    private string Base => _dir.Combine("base");

    private string Adapter => _dir.Combine("adapter");

    /// <summary>
    /// A tiny base model (with the byte tokenizer) and a PEFT adapter for it whose factors are all
    /// random (so every targeted module changes), with r 4, alpha 8, down_proj at r 2 and v_proj at
    /// alpha 3 through rank_pattern / alpha_pattern.
    /// </summary>
    private void BaseAndAdapter(string family = "llama", bool rsLora = false, params string[] targets)
    {
        using (var model = TinyModels.Create(family, 60))
            TinyModels.SaveWithByteTokenizer(model, Base);
        using var adapted = CausalLanguageModel.FromPretrained(Base);
        var config = LoraConfig.For(4, 8, targets.Length > 0 ? targets : ["q_proj", "v_proj", "down_proj", "lm_head"]);
        config.RankPattern = new() { ["down_proj"] = 2 };
        config.AlphaPattern = new() { ["v_proj"] = 3 };
        config.UseRsLora = rsLora;
        config.BaseModelNameOrPath = Base;
        LoraAdapter.Attach(adapted, config, seed: 61);
        using var generator = new Generator(62);
        using (torch.no_grad())
        {
            foreach (var (_, projection) in LoraAdapter.Adapted(adapted))
                projection.Lora!.B.weight!.normal_(0, 0.2, generator);
            foreach (var (_, embedding) in LoraAdapter.AdaptedEmbeddings(adapted))
                embedding.Lora!.A.normal_(0, 0.2, generator);
        }

        LoraAdapter.Save(adapted, config, Adapter);
    }

    /// <summary>PEFT's scaling, written out here by hand: alpha/r (alpha/√r with rsLoRA), down_proj at r 2, v_proj at alpha 3.</summary>
    private static double Scaling(string module, bool rsLora)
    {
        // By the module's own name: PEFT's pattern "v_proj" is (.*\.)?v_proj$, which Phi-3's qkv_proj does not match.
        var (rank, alpha) = module.Split('.')[^1] switch { "down_proj" => (2, 8.0), "v_proj" => (4, 3.0), _ => (4, 8.0) };
        return rsLora ? alpha / Math.Sqrt(rank) : alpha / rank;
    }

    /// <summary>The merged weights in float64, from the files: W + s·B·A for linear modules, E + s·(B·A)ᵀ for embeddings.</summary>
    private Dictionary<string, Tensor> Float64Merge(bool rsLora)
    {
        using var checkpoint = SafetensorsCheckpoint.Open(Base);
        using var adapter = SafetensorsFile.Open(Path.Combine(Adapter, LoraAdapter.WeightsFileName));
        var merged = checkpoint.Names.ToDictionary(n => n, n => checkpoint.ReadTensor(n).to_type(ScalarType.Float64), StringComparer.Ordinal);
        foreach (var name in adapter.Tensors.Select(t => t.Name).Where(n => n.EndsWith("lora_A.weight", StringComparison.Ordinal) || n.EndsWith("lora_embedding_A", StringComparison.Ordinal)))
        {
            var embedding = name.EndsWith("lora_embedding_A", StringComparison.Ordinal);
            var module = name["base_model.model.".Length..name.LastIndexOf(".lora_", StringComparison.Ordinal)];
            var a = adapter.ReadTensor(name).to_type(ScalarType.Float64);
            var b = adapter.ReadTensor(embedding ? name[..^1] + "B" : name.Replace("lora_A", "lora_B", StringComparison.Ordinal)).to_type(ScalarType.Float64);
            var delta = b.matmul(a) * Scaling(module, rsLora);
            merged[$"{module}.weight"] = merged[$"{module}.weight"] + (embedding ? delta.t() : delta);
        }

        return merged;
    }

    private static Tensor Float64Logits(CausalLanguageModel model, IReadOnlyDictionary<string, Tensor> weights, Tensor ids)
    {
        var reference = new ReferenceDecoder(model, weights);
        var rows = Enumerable.Range(0, (int)ids.shape[0]).SelectMany(i => reference.Forward(ids[i].data<long>().Select(t => (int)t).ToArray()).SelectMany(r => r)).ToArray();
        return torch.tensor(rows, dtype: ScalarType.Float64).reshape(ids.shape[0], ids.shape[1], model.Config.VocabSize);
    }

    private MergedExportReport Export(ScalarType? dtype = null, long maxShardBytes = SafetensorsCheckpoint.DefaultMaxShardBytes, string destination = "merged", bool replace = false) =>
        MergedModelExporter.Export(new MergedExportOptions
        {
            Source = AdapterSource.Resolve(Adapter),
            Destination = _dir.Combine(destination),
            DType = dtype,
            MaxShardBytes = maxShardBytes,
            Replace = replace,
        });

    [Theory]
    [InlineData("llama", false, new[] { "q_proj", "v_proj", "down_proj", "lm_head" })]
    [InlineData("llama", true, new[] { "q_proj", "v_proj", "down_proj", "embed_tokens" })] // rsLoRA, and an embedding table
    [InlineData("phi3", false, new[] { "qkv_proj", "gate_up_proj", "down_proj" })]         // fused projections: one A/B pair each
    public void Export_Float32_LogitsEqualAnIndependentFloat64Merge(string family, bool rsLora, string[] targets)
    {
        BaseAndAdapter(family, rsLora, targets);

        var report = Export();

        using var ids = TinyModels.RandomIds(2, 12, 262, seed: 63);
        using var exported = CausalLanguageModel.FromPretrained(report.Destination);
        using var logits = exported.Forward(ids);
        var merged = Float64Merge(rsLora);
        using var expected = Float64Logits(exported, merged, ids);
        TensorAssert.Close(expected, logits, atol: 2e-4, rtol: 1e-4);
        // The adapter moves the logits far beyond that tolerance, so a wrong scaling or a skipped module shows.
        using var baseOnly = CausalLanguageModel.FromPretrained(Base);
        using var unadapted = baseOnly.Forward(ids);
        Assert.True(TensorAssert.MaxAbsDiff(expected, unadapted) > 0.2, $"the adapter changes the logits by only {TensorAssert.MaxAbsDiff(expected, unadapted)}");
        // The library's own unmerged adapted model agrees, and the check reported what it saw.
        LoraAdapter.Load(baseOnly, Adapter);
        using var adaptedLogits = baseOnly.Forward(ids);
        TensorAssert.Close(adaptedLogits, logits, atol: 1e-4);
        // Two layers of each layer module, and the head or the embedding table once.
        Assert.Equal(targets.Sum(t => t is "lm_head" or "embed_tokens" ? 1 : 2), report.MergedModules.Count);
        var check = Assert.IsType<MergeCheck>(report.Check);
        Assert.InRange(check.MergeMaxAbsDiff, 0, check.MergeTolerance);
        Assert.InRange(check.ExportMaxAbsDiff, 0, check.ExportTolerance);
        Assert.Equal("float32", report.DType);
        Assert.Equal(["model.safetensors"], report.WeightFiles);
        foreach (var tensor in merged.Values)
            tensor.Dispose();
    }

    [Fact]
    public void Export_BFloat16_StoresTheFloat64MergeRoundedOnce_AndSaysSoInConfig()
    {
        BaseAndAdapter();

        var report = Export(ScalarType.BFloat16);

        using (var file = SafetensorsFile.Open(Path.Combine(report.Destination, SafetensorsCheckpoint.SingleFileName)))
        {
            Assert.All(file.Tensors, t => Assert.Equal(SafetensorsDType.BF16, t.DType));
            var merged = Float64Merge(rsLora: false);
            foreach (var name in new[] { "model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight", "lm_head.weight", "model.norm.weight" })
            {
                using var expected = merged[name].to_type(ScalarType.BFloat16);
                TensorAssert.Equal(expected, file.ReadTensor(name), name);
            }

            foreach (var tensor in merged.Values)
                tensor.Dispose();
        }

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(report.Destination, "config.json")))!;
        Assert.Equal("bfloat16", (string)config["torch_dtype"]!);
        Assert.Equal((string)JsonNode.Parse(File.ReadAllText(Path.Combine(Base, "config.json")))!["model_type"]!, (string)config["model_type"]!);
        var check = report.Check!;
        // Rounding to 8 significant bits shows, within the stated bound.
        Assert.True(check.ExportMaxAbsDiff > check.MergeMaxAbsDiff && check.ExportMaxAbsDiff <= check.ExportTolerance, $"{check}");
        Assert.Equal(check.Scale / 16, check.ExportTolerance, 12);
    }

    [Fact]
    public void Export_SmallShardSize_WritesShardsAndAnIndexThatMapsEveryTensor_AndLoadsBack()
    {
        BaseAndAdapter();
        var whole = Export(destination: "whole");

        var sharded = Export(maxShardBytes: 40_000, destination: "sharded");

        Assert.True(sharded.WeightFiles.Count > 3, $"{sharded.WeightFiles.Count} shards");
        Assert.False(File.Exists(Path.Combine(sharded.Destination, SafetensorsCheckpoint.SingleFileName)));
        var map = JsonNode.Parse(File.ReadAllText(Path.Combine(sharded.Destination, SafetensorsCheckpoint.IndexFileName)))!["weight_map"]!.AsObject();
        using var model = CausalLanguageModel.FromPretrained(sharded.Destination);
        Assert.Equal(model.ParameterShapes().Select(p => p.Name), map.Select(kv => kv.Key).Order(StringComparer.Ordinal));
        Assert.Equal(sharded.WeightFiles, map.Select(kv => (string)kv.Value!).Distinct().Order(StringComparer.Ordinal));
        foreach (var (tensor, shard) in map)
        {
            using var file = SafetensorsFile.Open(Path.Combine(sharded.Destination, (string)shard!));
            Assert.True(file.Contains(tensor), $"{shard} lacks {tensor}");
        }

        using var one = CausalLanguageModel.FromPretrained(whole.Destination);
        using var ids = TinyModels.RandomIds(1, 10, 262, seed: 64);
        TensorAssert.Equal(one.Forward(ids), model.Forward(ids));
        Assert.Equal(whole.WeightBytes, sharded.WeightBytes);
    }

    [Fact]
    public void Export_CopiesTheTokenizerFromTheBase_AndGenerationConfigFromTheAdapterWhenItHasOne()
    {
        BaseAndAdapter();
        File.WriteAllText(Path.Combine(Adapter, "generation_config.json"), "{\"eos_token_id\": 257, \"temperature\": 0.6}\n");

        var report = Export();

        foreach (var (name, from) in new[] { ("tokenizer.json", Base), ("tokenizer_config.json", Base), ("generation_config.json", Adapter) })
            Assert.Equal(File.ReadAllBytes(Path.Combine(from, name)), File.ReadAllBytes(Path.Combine(report.Destination, name)));
        Assert.Contains(new CopiedFile("generation_config.json", "adapter"), report.CopiedFiles);
        Assert.Contains(new CopiedFile("tokenizer.json", "base"), report.CopiedFiles);
        Assert.Equal(Modeling.Tokenization.TokenizerLoader.Load(Base).Encode("merged", addSpecialTokens: true), Modeling.Tokenization.TokenizerLoader.Load(report.Destination).Encode("merged", addSpecialTokens: true));
    }

    [Fact]
    public void Export_NonEmptyDestination_IsRefusedAndLeftAlone_UnlessReplaced()
    {
        BaseAndAdapter();
        Directory.CreateDirectory(_dir.Combine("merged"));
        File.WriteAllText(_dir.Combine("merged", "notes.txt"), "keep");

        var refused = Assert.Throws<IOException>(() => Export());

        Assert.Contains("exists and is not empty", refused.Message);
        Assert.Equal(["notes.txt"], Directory.EnumerateFileSystemEntries(_dir.Combine("merged")).Select(Path.GetFileName));
        var report = Export(replace: true);
        Assert.False(File.Exists(_dir.Combine("merged", "notes.txt")));
        Assert.True(File.Exists(Path.Combine(report.Destination, "config.json")));
        // Nothing temporary is left beside it.
        Assert.Equal(["adapter", "base", "merged"], Directory.EnumerateFileSystemEntries(_dir.Path).Select(Path.GetFileName).Order());
        var ontoBase = Assert.Throws<ArgumentException>(() => MergedModelExporter.Export(new MergedExportOptions { Source = AdapterSource.Resolve(Adapter), Destination = _dir.Path, Replace = true }));
        Assert.Contains("base model folder", ontoBase.Message);
    }

    [Fact]
    public void Export_AdapterForAnotherArchitectureOrShape_IsRefusedByName()
    {
        BaseAndAdapter();
        using (var phi3 = TinyModels.Create("phi3", 65))
            TinyModels.SaveWithByteTokenizer(phi3, _dir.Combine("phi3"));
        var narrow = TinyModels.Config("llama");
        narrow.IntermediateSize = 96;
        using (var other = TinyModels.Create("llama", 66, config: narrow))
            TinyModels.SaveWithByteTokenizer(other, _dir.Combine("narrow"));

        var fused = Assert.Throws<AdapterFormatException>(() => MergedModelExporter.Export(new MergedExportOptions { Source = AdapterSource.Resolve(Adapter, _dir.Combine("phi3")), Destination = _dir.Combine("out") }));
        var shape = Assert.Throws<AdapterFormatException>(() => MergedModelExporter.Export(new MergedExportOptions { Source = AdapterSource.Resolve(Adapter, _dir.Combine("narrow")), Destination = _dir.Combine("out") }));

        Assert.Contains("the base model has no linear module 'model.layers.0.self_attn.q_proj'", fused.Message);
        Assert.Contains("model.layers.0.mlp.down_proj.lora_A.weight' has shape [2, 128], expected [2, 96]", shape.Message);
        Assert.False(Directory.Exists(_dir.Combine("out")));
    }

    [Theory]
    [InlineData("use_dora", "true")]
    [InlineData("modules_to_save", "[\"lm_head\"]")]
    [InlineData("lora_bias", "true")]
    [InlineData("exclude_modules", "[\"model.layers.0.self_attn.q_proj\"]")]
    [InlineData("layer_replication", "[[0, 2], [1, 2]]")]
    public void Export_WhatAMergeCannotReproduce_IsRefusedByField(string field, string value)
    {
        BaseAndAdapter();
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Adapter, LoraAdapter.ConfigFileName)))!;
        config[field] = JsonNode.Parse(value);
        File.WriteAllText(Path.Combine(Adapter, LoraAdapter.ConfigFileName), config.ToJsonString());

        var error = Assert.Throws<AdapterFormatException>(() => Export());

        Assert.Contains(field, error.Message);
        Assert.False(Directory.Exists(_dir.Combine("merged")));
    }

    [Fact]
    public void LoraConfig_UnusedNewerPeftFields_AsPeftWritesThem_AreAccepted()
    {
        BaseAndAdapter();
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Adapter, LoraAdapter.ConfigFileName)))!;
        foreach (var (field, value) in new[] { ("exclude_modules", "null"), ("lora_bias", "false"), ("trainable_token_indices", "null"), ("target_parameters", "[]"), ("use_qalora", "false"), ("layer_replication", "null") })
            config[field] = JsonNode.Parse(value);
        File.WriteAllText(Path.Combine(Adapter, LoraAdapter.ConfigFileName), config.ToJsonString());

        Assert.Equal(7, Export().MergedModules.Count);
    }

    [Fact]
    public void Export_Float16Overflow_IsRefusedNamingTheTensor()
    {
        BaseAndAdapter();
        using (var model = CausalLanguageModel.FromPretrained(Base))
        {
            using (torch.no_grad())
                model.named_parameters().Single(p => p.name == "model.layers.1.mlp.up_proj.weight").parameter[0, 0].fill_(1e5);
            TinyModels.SaveWithByteTokenizer(model, Base);
        }

        var error = Assert.Throws<ArgumentException>(() => Export(ScalarType.Float16));

        Assert.Contains("'model.layers.1.mlp.up_proj.weight' overflows float16", error.Message);
        // Neither the destination nor the temporary folder beside it is left.
        Assert.Equal(["adapter", "base"], Directory.EnumerateFileSystemEntries(_dir.Path).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void Resolve_RunFolder_FindsItsAdapterAndTheBaseItNames_RelativeToTheCurrentFolder()
    {
        BaseAndAdapter();
        Directory.CreateDirectory(_dir.Combine("run"));
        Directory.Move(Adapter, _dir.Combine("run", "adapter"));

        var source = AdapterSource.Resolve(_dir.Combine("run"));

        Assert.Equal(new AdapterSource(_dir.Combine("run", "adapter"), Base), source);
        var config = LoraAdapter.ReadConfig(source.AdapterFolder);
        config.BaseModelNameOrPath = Path.GetRelativePath(Environment.CurrentDirectory, Base);
        LoraAdapter.WriteConfig(config, source.AdapterFolder);
        Assert.Equal(Path.GetFullPath(Base), AdapterSource.Resolve(_dir.Combine("run")).BaseFolder);
        config.BaseModelNameOrPath = "meta-llama/Llama-3.2-1B";
        LoraAdapter.WriteConfig(config, source.AdapterFolder);
        var missing = Assert.Throws<FileNotFoundException>(() => AdapterSource.Resolve(_dir.Combine("run")));
        Assert.Contains("base model 'meta-llama/Llama-3.2-1B' (base_model_name_or_path of", missing.Message);
        Assert.Equal(Base, AdapterSource.Resolve(_dir.Combine("run"), Base).BaseFolder);
        Assert.Contains("no adapter_config.json", Assert.Throws<FileNotFoundException>(() => AdapterSource.Resolve(Base)).Message);
    }

    public void Dispose() => _dir.Dispose();
}
