using System.Text.Json;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Metrics;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Training.Tests.Recipes;

/// <summary>Only the newest checkpoints (and the best) stay; the history lives once, in metrics.jsonl; resume is still exact.</summary>
[Collection(nameof(GlobalRandomState))]
public sealed class CheckpointRetentionTests : IDisposable
{
    private readonly TempFolder _dir = new();

    private TrainConfig Config(string output, int steps = 8, int keep = 2)
    {
        if (!Directory.Exists(_dir.Combine("student")))
        {
            using var model = TinyModels.Create("llama", 3);
            TinyModels.SaveWithByteTokenizer(model, _dir.Combine("student"));
            using var teacher = TinyModels.Create("llama", 4);
            TinyModels.SaveWithByteTokenizer(teacher, _dir.Combine("teacher"));
            File.WriteAllLines(_dir.Combine("data.jsonl"), Enumerable.Range(0, 24).Select(i => $"{{\"text\": \"row {i} {new string('q', i % 5 + 2)} {i * 7}\"}}"));
        }

        return new TrainConfig
        {
            Recipe = "kd",
            OutputDir = _dir.Combine(output),
            Student = new StudentConfig { Model = _dir.Combine("student"), Lora = new LoraSettings { R = 4, Alpha = 8, Dropout = 0.1, TargetModules = ["all-linear"] } },
            Teachers = [new TeacherConfig { Model = _dir.Combine("teacher") }],
            Signal = new SignalConfig { Format = "sampled", Samples = 6 },
            Dataset = new DatasetConfig { Path = _dir.Combine("data.jsonl"), MaxLength = 24, EvalFraction = 0.2 },
            Training = new TrainingConfig { MaxSteps = steps, BatchSize = 4, CheckpointEvery = 2, KeepCheckpoints = keep, Optimizer = new OptimizerConfig { Lr = 3e-3 } },
        };
    }

    private static List<string> Kept(TrainConfig config) => TrainingCheckpoint.All(config.OutputDir).Select(Path.GetFileName).ToList()!;

    private static List<double> Losses(TrainConfig config) =>
        File.ReadAllLines(MetricsFile.PathIn(config.OutputDir)).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToList();

    [Fact]
    public void Prune_KeepsTheNewestN_TheBestByEvalLoss_AndTheOneJustWritten()
    {
        var root = _dir.Combine("run", "checkpoints");
        double?[] evalLoss = [null, 0.5, 0.9, 0.4, 0.7, null, 0.6];
        for (var step = 1; step <= evalLoss.Length; step++)
        {
            Directory.CreateDirectory(Path.Combine(root, $"step-{step:D8}"));
            File.WriteAllText(Path.Combine(root, $"step-{step:D8}", "trainer_state.json"), JsonSerializer.Serialize(new { Step = step, EvalLoss = evalLoss[step - 1] }));
        }

        Directory.CreateDirectory(Path.Combine(root, ".step-00000003.0123.tmp")); // a save in progress is no checkpoint: untouched
        new CheckpointRetention(2, KeepBest: true).Prune(root, Path.Combine(root, "step-00000007"));

        Assert.Equal(["step-00000004", "step-00000006", "step-00000007"], TrainingCheckpoint.All(_dir.Combine("run")).Select(Path.GetFileName));
        Assert.True(Directory.Exists(Path.Combine(root, ".step-00000003.0123.tmp")));
        new CheckpointRetention(1, KeepBest: false).Prune(root, Path.Combine(root, "step-00000007"));
        Assert.Equal(["step-00000007"], TrainingCheckpoint.All(_dir.Combine("run")).Select(Path.GetFileName));
        Assert.Empty(Directory.GetDirectories(root, "*.deleting"));
    }

    [Fact]
    public async Task KeepTwo_StoppedAndResumed_KeepsExactlyTwo_AndGivesTheSameLosses()
    {
        var straight = Config("straight");
        var interrupted = Config("interrupted");

        await KdRecipe.RunAsync(straight, RerunPolicy.Resume, null, default);
        using var cancel = new CancellationTokenSource();
        var first = await KdRecipe.RunAsync(interrupted, RerunPolicy.Resume, new StopAfter(5, cancel), cancel.Token);
        var afterStop = Kept(interrupted);
        var second = await KdRecipe.RunAsync(interrupted, RerunPolicy.Resume, null, default);

        Assert.Equal(5, first.Steps);
        Assert.Equal(["step-00000004", "step-00000005"], afterStop);
        Assert.True(second.Completed);
        Assert.Equal(["step-00000006", "step-00000008"], Kept(interrupted));
        Assert.Equal(["step-00000006", "step-00000008"], Kept(straight));
        Assert.Equal(Losses(straight), Losses(interrupted));
        // The history is stored once: no checkpoint carries a copy.
        foreach (var checkpoint in TrainingCheckpoint.All(interrupted.OutputDir))
            Assert.False(JsonDocument.Parse(File.ReadAllText(Path.Combine(checkpoint, "trainer_state.json"))).RootElement.TryGetProperty("History", out _), checkpoint);
    }

    [Fact]
    public async Task KeepBest_KeepsTheNewestAndTheCheckpointWithTheLowestEvalLoss()
    {
        var config = Config("best", steps: 8, keep: 1);
        config.Training.EvalEvery = 2;
        config.Training.KeepBest = true;

        await KdRecipe.RunAsync(config, RerunPolicy.Resume, null, default);

        // Evaluated checkpoints: steps 2, 4, 6 (the last step's checkpoint is written before its final evaluation).
        var evaluated = MetricsFile.Read(config.OutputDir).Where(e => e.Eval is not null).ToList();
        Assert.Equal([2L, 4, 6], evaluated.Select(e => e.Step));
        var best = evaluated.MinBy(e => e.Eval!.Perplexity)!.Step;
        Assert.Equal(new[] { $"step-{best:D8}", "step-00000008" }.Order(StringComparer.Ordinal), Kept(config));
    }

    [Fact]
    public async Task OldFormatCheckpoint_CarryingItsHistory_StillResumesExactly()
    {
        var straight = Config("straight", keep: 0);
        var old = Config("old", keep: 0);
        await KdRecipe.RunAsync(straight, RerunPolicy.Resume, null, default);
        using var cancel = new CancellationTokenSource();
        await KdRecipe.RunAsync(old, RerunPolicy.Resume, new StopAfter(3, cancel), cancel.Token);
        // As earlier versions wrote it: the history inside trainer_state.json, and no metrics.jsonl to fall back on.
        var checkpoint = TrainingCheckpoint.Latest(old.OutputDir)!;
        var history = MetricsFile.Read(old.OutputDir);
        File.WriteAllText(Path.Combine(checkpoint, "trainer_state.json"), JsonSerializer.Serialize(new { Step = 3L, History = history }));
        File.Delete(MetricsFile.PathIn(old.OutputDir));

        var resumed = await KdRecipe.RunAsync(old, RerunPolicy.Resume, null, default);

        Assert.True(resumed.Completed);
        Assert.Equal(Losses(straight), Losses(old));
    }

    [Fact]
    public async Task Checkpoint_WhoseHistoryIsMissing_IsRefusedNamingMetricsJsonl()
    {
        var config = Config("lost");
        using var cancel = new CancellationTokenSource();
        await KdRecipe.RunAsync(config, RerunPolicy.Resume, new StopAfter(3, cancel), cancel.Token);
        File.WriteAllLines(MetricsFile.PathIn(config.OutputDir), File.ReadAllLines(MetricsFile.PathIn(config.OutputDir)).Take(2));

        var error = await Assert.ThrowsAsync<MetricsFormatException>(() => KdRecipe.RunAsync(config, RerunPolicy.Resume, null, default));

        Assert.Contains(MetricsFile.PathIn(config.OutputDir), error.Message);
        Assert.Contains("holds 2 steps, but the run's checkpoint is at step 3", error.Message);
    }

    private sealed class StopAfter(int steps, CancellationTokenSource cancel) : IProgress<TrainEvent>
    {
        public void Report(TrainEvent value)
        {
            if (value.Step >= steps)
                cancel.Cancel();
        }
    }

    public void Dispose() => _dir.Dispose();
}
