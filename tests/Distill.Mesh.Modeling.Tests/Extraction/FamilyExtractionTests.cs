using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Extraction;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Extraction;

/// <summary>Extraction across the families' layouts: Qwen-MoE experts, deeper teachers, Phi-3's fused projections.</summary>
public class FamilyExtractionTests
{
    /// <summary>Saves a teacher and a student of <paramref name="family"/> (tiny configs, edited) under temp/teacher and temp/student.</summary>
    private static (DecoderConfig Teacher, DecoderConfig Student) SavePair(TempFolder temp, string family, Action<DecoderConfig> editTeacher, Action<DecoderConfig> editStudent)
    {
        var configs = (Teacher: TinyModels.Config(family), Student: TinyModels.Config(family));
        editTeacher(configs.Teacher);
        editStudent(configs.Student);
        using (var teacher = TinyModels.Create(family, seed: 21, config: configs.Teacher))
            teacher.SavePretrained(temp.Combine("teacher"));
        using (var student = TinyModels.Create(family, seed: 22, config: configs.Student))
            student.SavePretrained(temp.Combine("student"));
        return configs;
    }

    [Fact]
    public void QwenMoe_FewerStudentExperts_ClustersTheTeachersMlpExperts_AndTheAdapterLoads()
    {
        using var temp = new TempFolder();
        var studentConfig = SavePair(temp, "qwen2_moe", _ => { }, student =>
        {
            var moe = (Qwen2MoeConfig)student;
            (moe.NumExperts, moe.MoeIntermediateSize, moe.SharedExpertIntermediateSizeField) = (2, 24, 32);
        }).Student;

        using var extractor = LoraExtractor.Open(temp.Combine("teacher"), temp.Combine("student"), new ExtractionOptions { Rank = 4, Seed = 3, TargetModules = ["gate", "gate_proj", "up_proj", "down_proj", "shared_expert_gate"] });
        var summary = extractor.Run(temp.Combine("out"));

        // Sparse layers 0 and 2: the teacher's 4 experts of the same layer in 2 clusters; dense layer 1 has none.
        Assert.Equal([0, 2], summary.Clusters.Select(c => c.Layer));
        foreach (var clusters in summary.Clusters)
        {
            Assert.True(clusters.Clustered);
            Assert.Equal(Enumerable.Range(0, 4).Select(e => $"{clusters.Layer}.{e}").Order(), clusters.Members.SelectMany(m => m).Order());
        }

        var source = (string name) => summary.Tensors.Single(t => t.Name == name).Source;
        Assert.StartsWith("experts 0.", source("model.layers.0.mlp.experts.1.up_proj.weight"));
        Assert.Equal("router rows of layer 2, by cluster", source("model.layers.2.mlp.gate.weight"));
        Assert.Equal("layer 0", source("model.layers.0.mlp.shared_expert.down_proj.weight"));
        Assert.Equal("layer 1", source("model.layers.1.mlp.gate_proj.weight"));
        Assert.Equal([24L, 64], summary.Tensors.Single(t => t.Name == "model.layers.2.mlp.experts.0.gate_proj.weight").Shape);
        using var model = CausalLanguageModel.FromPretrained(temp.Combine("student"));
        LoraAdapter.Load(model, temp.Combine("out"));
        Assert.Equal(summary.Tensors.Count(t => t.Rank > 0), LoraAdapter.Adapted(model).Count);
        using var ids = TinyModels.RandomIds(1, 5, studentConfig.VocabSize, seed: 23);
        Assert.False(model.Forward(ids).isnan().any().item<bool>());
    }

    [Fact]
    public void DeeperTeacher_EveryTeacherLayerBlendsIn_AndTheReportShowsTheBlocks()
    {
        using var temp = new TempFolder();
        SavePair(temp, "llama", teacher => teacher.NumHiddenLayers = 4, student => student.NumHiddenLayers = 1);

        // Full rank, exact SVD, float64: the merged student weight is the blend itself.
        var options = new ExtractionOptions { Rank = 64, Svd = SvdMethod.Exact, ComputeDtype = ScalarType.Float64, TargetModules = ["q_proj", "down_proj"] };
        using var extractor = LoraExtractor.Open(temp.Combine("teacher"), temp.Combine("student"), options);
        var summary = extractor.Run(temp.Combine("out"));

        const string Blend = "teacher 0 × 0.25 + teacher 1 × 0.25 + teacher 2 × 0.25 + teacher 3 × 0.25";
        Assert.Equal([$"student 0 ← {Blend}"], summary.LayerMap);
        Assert.Equal(Blend.Replace("teacher", "layer"), summary.Tensors.Single(t => t.Name == "model.layers.0.self_attn.q_proj.weight").Source);
        var teacher = LoraExtractorTests.ReadAll(temp.Combine("teacher"));
        using var student = CausalLanguageModel.FromPretrained(temp.Combine("student"), ScalarType.Float64);
        LoraAdapter.Load(student, temp.Combine("out"));
        LoraAdapter.Merge(student);
        var merged = LoraTargets.Linears(student).ToDictionary(l => l.Path, l => l.Module.Weight);
        foreach (var module in new[] { "self_attn.q_proj", "mlp.down_proj" })
        {
            var mean = stack(Enumerable.Range(0, 4).Select(l => teacher[$"model.layers.{l}.{module}.weight"]).ToArray()).mean([0]).to_type(ScalarType.Float64);
            TensorAssert.Close(mean, merged[$"model.layers.0.{module}"], atol: 1e-6, what: module);
        }
    }

    [Fact]
    public void Phi3_FusedProjections_AreProjectedPartByPart()
    {
        using var temp = new TempFolder();
        SavePair(temp, "phi3", _ => { }, student => (student.HiddenSize, student.IntermediateSize, student.NumAttentionHeads, student.NumKeyValueHeads) = (32, 48, 2, 1));

        // Full rank, exact SVD, float64: the merged student weight is the projected teacher weight.
        var options = new ExtractionOptions { Rank = 64, Svd = SvdMethod.Exact, ComputeDtype = ScalarType.Float64, TargetModules = ["qkv_proj", "gate_up_proj"] };
        using (var extractor = LoraExtractor.Open(temp.Combine("teacher"), temp.Combine("student"), options))
            Assert.Equal(4, extractor.Run(temp.Combine("out")).Tensors.Count(t => t.Rank > 0));

        var teacher = LoraExtractorTests.ReadAll(temp.Combine("teacher"));
        using var student = CausalLanguageModel.FromPretrained(temp.Combine("student"), ScalarType.Float64);
        LoraAdapter.Load(student, temp.Combine("out"));
        LoraAdapter.Merge(student);
        var merged = LoraTargets.Linears(student).ToDictionary(l => l.Path, l => l.Module.Weight);
        // qkv_proj rows: teacher q 64, k 32, v 32 → student q 32, k 16, v 16; gate_up_proj: 96 + 96 → 48 + 48.
        (string Module, long[] Teacher, long[] Student)[] fused =
        [
            ("self_attn.qkv_proj", [64, 32, 32], [32, 16, 16]),
            ("mlp.gate_up_proj", [96, 96], [48, 48]),
        ];
        foreach (var (module, teacherRows, studentRows) in fused)
        {
            var (teacherRow, studentRow) = (0L, 0L);
            for (var part = 0; part < teacherRows.Length; part++)
            {
                var block = teacher[$"model.layers.1.{module}.weight"].to_type(ScalarType.Float64).narrow(0, teacherRow, teacherRows[part]);
                var (expected, _) = ShapeProjector.Project(block, [studentRows[part], 32]);
                TensorAssert.Close(expected, merged[$"model.layers.1.{module}"].narrow(0, studentRow, studentRows[part]), atol: 1e-6, what: $"{module} part {part}");
                (teacherRow, studentRow) = (teacherRow + teacherRows[part], studentRow + studentRows[part]);
            }
        }
    }
}
