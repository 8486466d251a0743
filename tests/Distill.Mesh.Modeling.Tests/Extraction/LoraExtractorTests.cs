using System.Text.Json;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Extraction;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Extraction;

public class LoraExtractorTests
{
    /// <summary>A model folder whose weights are <paramref name="tensors"/> and whose config.json is <paramref name="config"/>.</summary>
    private static string WriteModel(string folder, IEnumerable<KeyValuePair<string, Tensor>> tensors, string config)
    {
        SafetensorsCheckpoint.Save(folder, tensors.OrderBy(t => t.Key, StringComparer.Ordinal).ToList());
        File.WriteAllText(Path.Combine(folder, "config.json"), config);
        return folder;
    }

    internal static Dictionary<string, Tensor> ReadAll(string folder)
    {
        using var checkpoint = SafetensorsCheckpoint.Open(folder);
        return checkpoint.Names.ToDictionary(n => n, checkpoint.ReadTensor);
    }

    private static Dictionary<string, Tensor> ReadAdapter(string folder)
    {
        using var file = SafetensorsFile.Open(Path.Combine(folder, LoraAdapter.WeightsFileName));
        return file.Tensors.ToDictionary(t => t.Name, t => file.ReadTensor(t.Name));
    }

    /// <summary>A student of <paramref name="family"/> and a teacher that differs from it by a rank-2 matrix in every layer weight.</summary>
    private static (string Teacher, string Student) FineTunedPair(TempFolder temp, string family, long seed, double noise = 0, bool embeddings = false)
    {
        using var model = TinyModels.Create(family, seed);
        var student = temp.Combine("student");
        model.SavePretrained(student);
        using var generator = new Generator((ulong)seed + 100);
        var teacher = ReadAll(student).ToDictionary(t => t.Key, t =>
        {
            if (t.Value.dim() != 2 || !(t.Key.StartsWith("model.layers.", StringComparison.Ordinal) || (embeddings && t.Key == "model.embed_tokens.weight")))
                return t.Value;
            var (m, n) = (t.Value.shape[0], t.Value.shape[1]);
            var planted = randn(m, 2, generator: generator).matmul(randn(2, n, generator: generator)) * 0.05;
            return t.Value + planted + randn(m, n, generator: generator) * noise;
        });
        return (WriteModel(temp.Combine("teacher"), teacher, File.ReadAllText(Path.Combine(student, "config.json"))), student);
    }

    [Fact]
    public void SameShape_ErrorOfEveryTensorIsTheSvdOptimum_Float64()
    {
        using var temp = new TempFolder();
        var (teacher, student) = FineTunedPair(temp, "llama", seed: 3, noise: 0.01);
        var options = new ExtractionOptions { Rank = 4, ComputeDtype = ScalarType.Float64, AdapterDtype = ScalarType.Float64 };
        using var extractor = LoraExtractor.Open(teacher, student, options);

        var summary = extractor.Run(temp.Combine("out"));

        Assert.Equal(14, summary.Tensors.Count); // 2 layers × (q, k, v, o, gate, up, down)
        Assert.All(summary.Tensors, t =>
        {
            Assert.Null(t.Skipped);
            Assert.Equal("None", t.Projection);
            // Noise makes the delta full rank: the optimum is well above zero, and we reach it.
            Assert.InRange(t.OptimalRelativeError!.Value, 1e-3, 1);
            Assert.InRange(t.ErrorRatio!.Value, 1 - 1e-9, 1 + 1e-9);
        });
        Assert.Contains(summary.NotCarried, n => n.StartsWith("model.embed_tokens.weight: embedding", StringComparison.Ordinal));
        Assert.Contains(summary.NotCarried, n => n.StartsWith("lm_head.weight: lm_head", StringComparison.Ordinal));
        Assert.Contains(summary.NotCarried, n => n.StartsWith("model.norm.weight: a vector", StringComparison.Ordinal));
    }

    [Fact]
    public void RandomizedExtraction_IsWithinFivePercentOfTheOptimum()
    {
        using var temp = new TempFolder();
        var (teacher, student) = FineTunedPair(temp, "llama", seed: 4, noise: 0.01);
        using var extractor = LoraExtractor.Open(teacher, student, new ExtractionOptions { Rank = 4, Svd = SvdMethod.Randomized, Seed = 9, ReportOptimum = true });

        var summary = extractor.Run(temp.Combine("out"));

        Assert.All(summary.Tensors, t => Assert.InRange(t.ErrorRatio!.Value, 1 - 1e-4, 1.05));
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("mixtral")]
    [InlineData("qwen3")]
    [InlineData("qwen2_moe")]
    [InlineData("qwen3_moe")]
    public void Adapter_LoadsIntoTheStudent_AndMergedWeightsAreWPlusScaledBA(string family)
    {
        using var temp = new TempFolder();
        var (teacher, student) = FineTunedPair(temp, family, seed: 5);
        var options = new ExtractionOptions { Rank = 4, Alpha = 16, RankPattern = new Dictionary<string, int> { ["o_proj"] = 2 } };
        using (var extractor = LoraExtractor.Open(teacher, student, options))
            extractor.Run(temp.Combine("out"));

        var config = LoraAdapter.ReadConfig(temp.Combine("out"));
        Assert.Equal((4, 16.0), (config.R, config.LoraAlpha));
        var layers = TinyModels.Config(family).NumHiddenLayers;
        Assert.Equal(Enumerable.Range(0, layers).Select(l => $"model.layers.{l}.self_attn.o_proj"), config.RankPattern.Where(p => p.Value == 2).Select(p => p.Key).Order());
        Assert.Empty(config.AlphaPattern);
        Assert.Equal(JsonValueKind.Array, config.TargetModules.ValueKind);

        using var model = CausalLanguageModel.FromPretrained(student, ScalarType.Float64);
        var before = LoraTargets.Linears(model).ToDictionary(l => l.Path, l => l.Module.Weight.clone());
        LoraAdapter.Load(model, temp.Combine("out"));
        var adapter = ReadAdapter(temp.Combine("out"));
        var adapted = LoraAdapter.Adapted(model);
        Assert.Equal(adapter.Count / 2, adapted.Count);
        LoraAdapter.Merge(model);

        var teacherWeights = ReadAll(teacher);
        foreach (var (path, projection) in adapted)
        {
            var a = adapter[$"base_model.model.{path}.lora_A.weight"].to_type(ScalarType.Float64);
            var b = adapter[$"base_model.model.{path}.lora_B.weight"].to_type(ScalarType.Float64);
            var scaling = 16.0 / a.shape[0];
            // By hand: W + (α/r)·B·A, the scaling applied once.
            TensorAssert.Close(before[path] + b.matmul(a) * scaling, projection.Weight, atol: 1e-12, what: path);
            // The delta has rank 2 ≤ r: merging gives back the teacher.
            TensorAssert.Close(teacherWeights[$"{path}.weight"], projection.Weight, atol: 2e-6, what: path);
        }

        if (family == "mixtral")
        {
            Assert.Contains(adapted, a => a.Path == "model.layers.0.block_sparse_moe.gate");
            Assert.Contains(adapted, a => a.Path == "model.layers.1.block_sparse_moe.experts.3.w2");
        }

        if (family == "qwen2_moe")
        {
            // Router, experts, shared expert and its gate in layer 0; layer 1 is dense (mlp_only_layers).
            string[] expected = ["mlp.gate", "mlp.experts.3.down_proj", "mlp.shared_expert.up_proj", "mlp.shared_expert_gate"];
            Assert.All(expected, m => Assert.Contains(adapted, a => a.Path == $"model.layers.0.{m}"));
            Assert.Contains(adapted, a => a.Path == "model.layers.1.mlp.gate_proj");
        }
    }

    [Fact]
    public void Embeddings_ByOption_AsPeftEmbeddingLora_AndMergedTheyGiveTheTeachersTable()
    {
        using var temp = new TempFolder();
        var (teacher, student) = FineTunedPair(temp, "llama", seed: 14, embeddings: true);
        using (var without = LoraExtractor.Open(teacher, student, new ExtractionOptions { Rank = 4 }))
            Assert.Contains("model.embed_tokens.weight: embedding: not extracted unless asked (--include-embeddings)", without.Plan.NotCarried);

        using (var extractor = LoraExtractor.Open(teacher, student, new ExtractionOptions { Rank = 4, Alpha = 8, IncludeEmbeddings = true, ComputeDtype = ScalarType.Float64 }))
        {
            var summary = extractor.Run(temp.Combine("out"));
            var embedding = summary.Tensors.Single(t => t.Name == "model.embed_tokens.weight");
            Assert.Equal([262L, 64], embedding.Shape);
            Assert.Equal(4, embedding.Rank);
            Assert.InRange(embedding.RelativeError, 0, 1e-5); // the change has rank 2 ≤ r
        }

        var adapter = ReadAdapter(temp.Combine("out"));
        Assert.Equal([4L, 262], adapter["base_model.model.model.embed_tokens.lora_embedding_A"].shape);
        Assert.Equal([64L, 4], adapter["base_model.model.model.embed_tokens.lora_embedding_B"].shape);
        Assert.Contains("embed_tokens", LoraAdapter.ReadConfig(temp.Combine("out")).TargetModules.EnumerateArray().Select(e => e.GetString()));

        using var model = CausalLanguageModel.FromPretrained(student, ScalarType.Float64);
        LoraAdapter.Load(model, temp.Combine("out"));
        Assert.Single(LoraAdapter.AdaptedEmbeddings(model));
        LoraAdapter.Merge(model);
        TensorAssert.Close(ReadAll(teacher)["model.embed_tokens.weight"], model.Body.EmbedTokens.Weight, atol: 2e-6);

        // A student whose head is tied to its embeddings cannot take an embedding adapter.
        var tied = TinyModels.Config("llama");
        tied.TieWordEmbeddings = true;
        using (var tiedModel = TinyModels.Create("llama", seed: 15, config: tied))
            tiedModel.SavePretrained(temp.Combine("tied"));
        Assert.Contains("tied to the embeddings", Assert.Throws<ArgumentException>(() =>
            LoraExtractor.Open(temp.Combine("tied"), temp.Combine("tied"), new ExtractionOptions { IncludeEmbeddings = true })).Message);
    }

    [Fact]
    public void UnequalModels_ProjectIntoTheStudentsShapes_AndReportTheLayerMap()
    {
        using var temp = new TempFolder();
        var teacherConfig = TinyModels.Config("llama");
        teacherConfig.NumHiddenLayers = 4;
        using (var model = TinyModels.Create("llama", seed: 6, config: teacherConfig))
            model.SavePretrained(temp.Combine("teacher"));
        var studentConfig = TinyModels.Config("llama");
        (studentConfig.HiddenSize, studentConfig.IntermediateSize, studentConfig.NumAttentionHeads, studentConfig.NumKeyValueHeads) = (32, 48, 2, 1);
        studentConfig.NumHiddenLayers = 3;
        using (var model = TinyModels.Create("llama", seed: 7, config: studentConfig))
            model.SavePretrained(temp.Combine("student"));

        using var extractor = LoraExtractor.Open(temp.Combine("teacher"), temp.Combine("student"), new ExtractionOptions { Rank = 8 });
        var summary = extractor.Run(temp.Combine("out"));

        Assert.Equal(["student 0 ← teacher 0", "student 1 ← teacher 1 × 0.5 + teacher 2 × 0.5", "student 2 ← teacher 3"], summary.LayerMap);
        Assert.Equal(21, summary.Tensors.Count);
        Assert.All(summary.Tensors, t => Assert.Equal("Svd", t.Projection));
        Assert.Equal("layer 1 × 0.5 + layer 2 × 0.5", summary.Tensors.Single(t => t.Name == "model.layers.1.mlp.down_proj.weight").Source);
        Assert.Equal([48L, 32], summary.Tensors.Single(t => t.Name == "model.layers.2.mlp.gate_proj.weight").Shape);
        using var student = CausalLanguageModel.FromPretrained(temp.Combine("student"));
        LoraAdapter.Load(student, temp.Combine("out"));
        Assert.Equal(21, LoraAdapter.Adapted(student).Count);
        Assert.True(summary.SizeRatio is > 0 and < 1, $"adapter/dense size ratio {summary.SizeRatio}");
    }

    [Fact]
    public void ShardsThenConsolidate_EqualsOneProcess_AndAKilledShardResumes()
    {
        using var temp = new TempFolder();
        var (teacher, student) = FineTunedPair(temp, "llama", seed: 8, noise: 0.01);
        using (var single = LoraExtractor.Open(teacher, student, new ExtractionOptions { Rank = 3, Svd = SvdMethod.Randomized, Seed = 2 }))
            single.Run(temp.Combine("single"));

        var options = new ExtractionOptions { Rank = 3, Svd = SvdMethod.Randomized, Seed = 2, Shards = 3 };
        var outFolder = temp.Combine("sharded");
        using (var worker = LoraExtractor.Open(teacher, student, options))
        {
            Assert.Equal(14, Enumerable.Range(0, 3).Sum(s => worker.Plan.TasksOf(s).Count));
            worker.RunShard(outFolder, 0);
            // Shard 1 is killed after its first tensor: nothing of it is written.
            using var kill = new CancellationTokenSource();
            Assert.Throws<OperationCanceledException>(() => worker.RunShard(outFolder, 1, e => { if (e.Kind == "tensor") kill.Cancel(); }, kill.Token));
            Assert.False(File.Exists(LoraExtractor.ShardPath(outFolder, 1, 3)));
            Assert.Null(worker.Finished(outFolder, 1));
            var refused = Assert.Throws<InvalidOperationException>(() => worker.Consolidate(outFolder));
            Assert.Contains("shard(s) 1, 2 of 3 are not finished", refused.Message);
        }

        // A new worker (same inputs) resumes: shard 0 is skipped, 1 and 2 are computed.
        var events = new List<ExtractionEvent>();
        using (var resumed = LoraExtractor.Open(teacher, student, options))
            resumed.Run(outFolder, cleanup: true, onEvent: events.Add);
        Assert.Equal(["shard_skipped", "shard_started", "shard_started", "consolidated"], events.Where(e => e.Kind != "tensor" && e.Kind != "shard_finished").Select(e => e.Kind));
        Assert.False(Directory.Exists(Path.Combine(outFolder, LoraExtractor.ShardFolder)));

        var one = ReadAdapter(temp.Combine("single"));
        var sharded = ReadAdapter(outFolder);
        Assert.Equal(one.Keys.Order(), sharded.Keys.Order());
        foreach (var (key, tensor) in one)
            TensorAssert.Equal(tensor, sharded[key], key);
        Assert.Equal(File.ReadAllText(temp.Combine("single", "adapter_config.json")), File.ReadAllText(Path.Combine(outFolder, "adapter_config.json")));
    }

    [Fact]
    public void DamagedOrStaleShards_AreRecomputed()
    {
        using var temp = new TempFolder();
        var (teacher, student) = FineTunedPair(temp, "llama", seed: 9);
        var outFolder = temp.Combine("out");
        var options = new ExtractionOptions { Rank = 2, Shards = 2 };
        using var extractor = LoraExtractor.Open(teacher, student, options);
        extractor.RunShard(outFolder, 0);
        extractor.RunShard(outFolder, 1);
        Assert.NotNull(extractor.Finished(outFolder, 1));

        // One flipped byte in shard 1's data: no longer finished, recomputed on the next run.
        var path = LoraExtractor.ShardPath(outFolder, 1, 2);
        var bytes = File.ReadAllBytes(path);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
        Assert.Null(extractor.Finished(outFolder, 1));

        // Other options: another plan, whose shards are not these.
        using (var other = LoraExtractor.Open(teacher, student, options with { Rank = 3 }))
            Assert.Null(other.Finished(outFolder, 0));

        // Another worker holding shard 1: this one is refused rather than duplicating the work.
        using (new FileStream(Path.ChangeExtension(path, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
            Assert.Contains("shard 1 of 2 is being computed by another worker", Assert.Throws<InvalidOperationException>(() => extractor.RunShard(outFolder, 1)).Message);

        var events = new List<ExtractionEvent>();
        extractor.Run(outFolder, onEvent: events.Add);
        Assert.False(File.Exists(Path.ChangeExtension(path, ".lock")));
        Assert.Equal(["shard_skipped", "shard_started"], events.Where(e => e.Kind.StartsWith("shard_s", StringComparison.Ordinal)).Select(e => e.Kind));
        Assert.NotNull(extractor.Finished(outFolder, 1));
    }

    [Theory]
    [InlineData(ExpertStyle.Mixtral)]
    [InlineData(ExpertStyle.QwenMoe)]
    public void MoE_PlantedExpertClustersAreRecovered_AndRouterRowsFollowThem(ExpertStyle style)
    {
        const int hidden = 16, intermediate = 8, teacherExperts = 8, studentExperts = 4;
        using var temp = new TempFolder();
        var random = new Random(12);
        using var generator = new Generator(13);
        string[] parts = style == ExpertStyle.Mixtral ? ["w1", "w2", "w3"] : ["gate_proj", "down_proj", "up_proj"];
        long[] ShapeOf(string part) => part is "w2" or "down_proj" ? [hidden, intermediate] : [intermediate, hidden];

        Dictionary<string, Tensor> Model(int experts, Func<int, int, string, Tensor> expert)
        {
            var tensors = new Dictionary<string, Tensor> { ["model.embed_tokens.weight"] = randn(32, hidden, generator: generator) };
            for (var layer = 0; layer < 2; layer++)
            {
                tensors[ExpertNaming.RouterName(layer, style)] = randn(experts, hidden, generator: generator);
                tensors[$"model.layers.{layer}.self_attn.q_proj.weight"] = randn(hidden, hidden, generator: generator);
                for (var e = 0; e < experts; e++)
                    foreach (var part in parts)
                        tensors[ExpertNaming.ExpertName(layer, e, part, style)] = expert(layer, e, part);
            }

            return tensors;
        }

        // Teacher: 4 planted centres per layer, each expert a centre plus 1 % noise, labels shuffled.
        var labels = Enumerable.Range(0, 2).Select(_ => Enumerable.Range(0, teacherExperts).Select(e => e % studentExperts).OrderBy(_ => random.Next()).ToArray()).ToArray();
        var centres = Enumerable.Range(0, 2).Select(_ => Enumerable.Range(0, studentExperts).Select(_ => parts.ToDictionary(p => p, p => randn(ShapeOf(p), generator: generator))).ToArray()).ToArray();
        var teacher = Model(teacherExperts, (layer, e, part) => centres[layer][labels[layer][e]][part] + randn(ShapeOf(part), generator: generator) * 0.01);
        var student = Model(studentExperts, (_, _, part) => randn(ShapeOf(part), generator: generator));
        WriteModel(temp.Combine("teacher"), teacher, "{}");
        WriteModel(temp.Combine("student"), student, "{}");

        using var extractor = LoraExtractor.Open(temp.Combine("teacher"), temp.Combine("student"), new ExtractionOptions { Rank = 16, Seed = 4, ComputeDtype = ScalarType.Float64 });
        var summary = extractor.Run(temp.Combine("out"));

        Assert.Equal(2, summary.Clusters.Count);
        var adapter = ReadAdapter(temp.Combine("out"));
        for (var layer = 0; layer < 2; layer++)
        {
            var planted = Enumerable.Range(0, studentExperts)
                .Select(c => string.Join(",", Enumerable.Range(0, teacherExperts).Where(e => labels[layer][e] == c).Select(e => $"{layer}.{e}")))
                .Order().ToList();
            var found = summary.Clusters[layer].Members.Select(m => string.Join(",", m)).Order().ToList();
            Assert.True(summary.Clusters[layer].Clustered);
            Assert.Equal(planted, found);

            // Full rank (16 ≥ min dims): merged router rows are the clusters' mean teacher rows,
            // merged experts the clusters' mean experts.
            var router = ExpertNaming.RouterName(layer, style);
            var module = router[..^".weight".Length];
            var merged = student[router].to_type(ScalarType.Float64) + adapter[$"base_model.model.{module}.lora_B.weight"].matmul(adapter[$"base_model.model.{module}.lora_A.weight"]).to_type(ScalarType.Float64);
            for (var c = 0; c < studentExperts; c++)
            {
                var members = summary.Clusters[layer].Members[c].Select(m => int.Parse(m.Split('.')[1])).ToArray();
                var meanRow = stack(members.Select(e => teacher[router][e]).ToArray()).mean([0]).to_type(ScalarType.Float64);
                TensorAssert.Close(meanRow, merged[c], atol: 1e-5, what: $"router row {c}");
                var name = ExpertNaming.ExpertName(layer, c, parts[0], style);
                var expertModule = name[..^".weight".Length];
                var mergedExpert = student[name].to_type(ScalarType.Float64) + adapter[$"base_model.model.{expertModule}.lora_B.weight"].matmul(adapter[$"base_model.model.{expertModule}.lora_A.weight"]).to_type(ScalarType.Float64);
                var meanExpert = stack(members.Select(e => teacher[ExpertNaming.ExpertName(layer, e, parts[0], style)]).ToArray()).mean([0]).to_type(ScalarType.Float64);
                TensorAssert.Close(meanExpert, mergedExpert, atol: 1e-5, what: name);
            }
        }
    }

    [Fact]
    public void BadInputs_AreRefusedWithTheProblemNamed()
    {
        using var temp = new TempFolder();
        var (teacher, student) = FineTunedPair(temp, "llama", seed: 10);

        Assert.Contains("the student does not have: qkv_proj", Assert.Throws<ArgumentException>(() =>
            LoraExtractor.Open(teacher, student, new ExtractionOptions { TargetModules = ["q_proj", "qkv_proj"] })).Message);
        Assert.Contains("at most one shard per tensor", Assert.Throws<ArgumentException>(() =>
            LoraExtractor.Open(teacher, student, new ExtractionOptions { TargetModules = ["q_proj"], Shards = 3 })).Message);
        Assert.Contains("rank must be ≥ 1", Assert.Throws<ArgumentException>(() =>
            LoraExtractor.Open(teacher, student, new ExtractionOptions { Rank = 0 })).Message);
        Assert.Contains("has no config.json", Assert.Throws<FileNotFoundException>(() =>
            LoraExtractor.Open(teacher, temp.Path, new ExtractionOptions())).Message);

        // A teacher identical to the student: nothing differs, nothing is saved, and it says so.
        using var same = LoraExtractor.Open(student, student, new ExtractionOptions { TargetModules = ["q_proj"] });
        Assert.Contains("no difference between teacher and student", Assert.Throws<InvalidOperationException>(() => same.Run(temp.Combine("out"))).Message);
        Assert.False(File.Exists(temp.Combine("out", "adapter_model.safetensors")));
    }
}
