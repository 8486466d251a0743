using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Recipes;
using Distill.Mesh.Training.Teachers;
using TorchSharp;

namespace Distill.Mesh.Training.Tests.Recipes;

[Collection(nameof(GlobalRandomState))]
public sealed class DivergenceTests : IDisposable
{
    private readonly TempFolder _dir = new();

    /// <summary>A teacher that turns to NaN from its <paramref name="healthy"/>+1-th call on.</summary>
    private sealed class NaNAfter(ITeacherSignal inner, int healthy) : ITeacherSignal
    {
        private int _calls;

        public TeacherDescription Describe() => inner.Describe();

        public async Task<ITeacherRows> ScoreAsync(Batch batch, SignalRequest request, CancellationToken cancellationToken = default)
        {
            var rows = await inner.ScoreAsync(batch, request, cancellationToken);
            return ++_calls <= healthy ? rows : new Poisoned(rows);
        }

        private sealed class Poisoned(ITeacherRows rows) : ITeacherRows
        {
            public long Rows => rows.Rows;

            public TeacherTarget Block(long start, long length) => new DenseTeacherLogits(((DenseTeacherLogits)rows.Block(start, length)).Logits * double.NaN);

            public void Dispose() => rows.Dispose();
        }

        public void Dispose() => inner.Dispose();
    }

    private TrainConfig Config(string output, int rows = 16)
    {
        if (!Directory.Exists(_dir.Combine("student")))
        {
            using var model = TinyModels.Create("llama", 3);
            TinyModels.SaveWithByteTokenizer(model, _dir.Combine("student"));
            using var teacher = TinyModels.Create("llama", 4);
            TinyModels.SaveWithByteTokenizer(teacher, _dir.Combine("teacher"));
        }

        File.WriteAllLines(_dir.Combine($"data-{rows}.jsonl"), Enumerable.Range(0, rows).Select(i => $"{{\"text\": \"row {i} {new string('q', i % 5 + 2)}\"}}"));
        return new TrainConfig
        {
            Recipe = "kd",
            OutputDir = _dir.Combine(output),
            Student = new StudentConfig { Model = _dir.Combine("student") },
            Teachers = [new TeacherConfig { Model = _dir.Combine("teacher") }],
            Dataset = new DatasetConfig { Path = _dir.Combine($"data-{rows}.jsonl"), MaxLength = 24, EvalFraction = 0 },
            Training = new TrainingConfig { MaxSteps = 6, BatchSize = 4, MaxGradNorm = 0 },
        };
    }

    [Fact]
    public async Task NaNLoss_StopsTheRunNamingTheStep_AppliesNothing_AndKeepsTheLastGoodStepAsACheckpoint()
    {
        var config = Config("diverged");
        var teacher = new NaNAfter(InProcessTeacher.Load(config.Teachers[0].Model), healthy: 2);

        var error = await Assert.ThrowsAsync<TrainingDivergedException>(() => RecipeRunner.RunAsync(config, RerunPolicy.Resume, null, default, _ => teacher));

        Assert.Equal(3, error.Step);
        Assert.StartsWith("training diverged at step 3: the loss is ", error.Message);
        Assert.Contains("NaN", error.Message);
        Assert.Contains("step-00000002", error.Message);
        Assert.Equal([1L, 2L], File.ReadAllLines(Path.Combine(config.OutputDir, "metrics.jsonl")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()));
        // The checkpoint holds finite weights: step 3's NaN gradients were never applied.
        using var weights = Modeling.Checkpoints.SafetensorsFile.Open(Path.Combine(TrainingCheckpoint.Latest(config.OutputDir)!, "trainable.safetensors"));
        foreach (var tensor in weights.Tensors)
        {
            using var values = weights.ReadTensor(tensor.Name);
            Assert.True(values.isfinite().all().item<bool>(), tensor.Name);
        }
    }

    [Fact]
    public async Task ClippingOff_StillRecordsAFiniteGradientNorm()
    {
        var config = Config("unclipped");

        await RecipeRunner.RunAsync(config, RerunPolicy.Resume, null, default);

        var norms = File.ReadAllLines(Path.Combine(config.OutputDir, "metrics.jsonl")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("grad_norm").GetDouble()).ToList();
        Assert.Equal(6, norms.Count);
        Assert.All(norms, n => Assert.True(double.IsFinite(n) && n > 0));
    }

    [Fact]
    public async Task RunThatFailsBeforeTraining_LeavesNoFolderClaimingARun()
    {
        var config = Config("too-small", rows: 2); // two examples for a batch of four

        var error = await Assert.ThrowsAsync<ConfigException>(() => RecipeRunner.RunAsync(config, RerunPolicy.Resume, null, default));

        Assert.Contains("batch_size 4 exceeds the 2 training examples", error.Message);
        Assert.False(Directory.Exists(config.OutputDir));
    }

    public void Dispose() => _dir.Dispose();
}
