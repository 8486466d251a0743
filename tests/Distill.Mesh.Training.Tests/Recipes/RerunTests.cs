using System.Text.Json;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Training.Tests.Recipes;

/// <summary>A rerun resumes only the same run; the record of what a folder holds is never rewritten.</summary>
[Collection(nameof(GlobalRandomState))]
public sealed class RerunTests : IDisposable
{
    private readonly TempFolder _dir = new();

    private TrainConfig Config(int steps = 4, string kind = "rkl")
    {
        if (!Directory.Exists(_dir.Combine("student")))
        {
            using var model = TinyModels.Create("llama", 3);
            TinyModels.SaveWithByteTokenizer(model, _dir.Combine("student"));
            using var teacher = TinyModels.Create("llama", 4);
            TinyModels.SaveWithByteTokenizer(teacher, _dir.Combine("teacher"));
            File.WriteAllLines(_dir.Combine("data.jsonl"), Enumerable.Range(0, 16).Select(i => $"{{\"text\": \"row {i} {new string('q', i % 5 + 2)}\"}}"));
        }

        return new TrainConfig
        {
            Recipe = "kd",
            OutputDir = _dir.Combine("run"),
            Student = new StudentConfig { Model = _dir.Combine("student") },
            Teachers = [new TeacherConfig { Model = _dir.Combine("teacher") }],
            Loss = new LossConfig { Kind = kind },
            Dataset = new DatasetConfig { Path = _dir.Combine("data.jsonl"), MaxLength = 24, EvalFraction = 0 },
            Training = new TrainingConfig { MaxSteps = steps, BatchSize = 4 },
        };
    }

    private string Recorded => File.ReadAllText(_dir.Combine("run", RunProvenance.ResolvedConfigFile));

    private List<JsonElement> Log => File.ReadAllLines(_dir.Combine("run", RunProvenance.LogFile)).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    [Fact]
    public async Task Rerun_WithAnotherConfig_IsRefusedNamingTheKeys_AndLeavesTheRecordAsItWas()
    {
        await KdRecipe.RunAsync(Config(), RerunPolicy.Resume, null, default);
        var recorded = Recorded;
        var other = Config(kind: "fkl");
        other.Student.Model = _dir.Combine("teacher");
        other.Seed = 9;

        var error = await Assert.ThrowsAsync<ConfigException>(() => KdRecipe.RunAsync(other, RerunPolicy.Resume, null, default));

        Assert.Contains("loss.kind: \"rkl\" → \"fkl\"", error.Message);
        Assert.Contains("student.model", error.Message);
        Assert.Contains("seed: 42 → 9", error.Message);
        Assert.Contains("--restart", error.Message);
        Assert.Equal(recorded, Recorded);
        Assert.Single(Log, e => e.GetProperty("event").GetString() == "started");
    }

    [Fact]
    public async Task Rerun_WithMoreSteps_Resumes_LogsTheChange_AndFewerStepsAreRefused()
    {
        await KdRecipe.RunAsync(Config(steps: 4), RerunPolicy.Resume, null, default);
        var recorded = Recorded;

        var events = new List<TrainEvent>();
        var longer = await KdRecipe.RunAsync(Config(steps: 6), RerunPolicy.Resume, new Progress(events), default);
        var shorter = await Assert.ThrowsAsync<ConfigException>(() => KdRecipe.RunAsync(Config(steps: 3), RerunPolicy.Resume, null, default));

        Assert.Equal(6, longer.Steps);
        Assert.Equal(6, File.ReadAllLines(_dir.Combine("run", "metrics.jsonl")).Length);
        Assert.Equal(recorded, Recorded);
        var resumed = Log.First(e => e.GetProperty("event").GetString() == "resumed");
        Assert.Equal("[4,6]", resumed.GetProperty("changed").GetProperty("training.max_steps").GetRawText());
        Assert.Contains("beyond the 3 steps", shorter.Message);
        // The resumed run's progress counts towards its new length, not the old one's.
        Assert.Equal((4L, 6L), events.Where(e => e.Message == "resumed from step 4").Select(e => (e.Step, e.TotalSteps)).Single());
    }

    private sealed class Progress(List<TrainEvent> events) : IProgress<TrainEvent>
    {
        public void Report(TrainEvent value) => events.Add(value);
    }

    [Fact]
    public async Task Restart_StartsOver_AndFork_ContinuesInANewFolderWithTheNewConfig()
    {
        await KdRecipe.RunAsync(Config(steps: 4), RerunPolicy.Resume, null, default);

        var restarted = await KdRecipe.RunAsync(Config(steps: 2, kind: "fkl"), RerunPolicy.Restart, null, default);
        Assert.Equal(2, File.ReadAllLines(_dir.Combine("run", "metrics.jsonl")).Length);
        Assert.Contains("\"kind\": \"fkl\"", Recorded);
        Assert.Equal(["restarted", "started"], Log.Select(e => e.GetProperty("event").GetString()!));
        Assert.Equal(2, restarted.Steps);

        var forked = Config(steps: 5, kind: "jsd");
        forked.OutputDir = _dir.Combine("fork");
        Assert.Equal(2, RunProvenance.Fork(_dir.Combine("run"), forked));
        var result = await KdRecipe.RunAsync(forked, RerunPolicy.Resume, null, default);

        Assert.Equal(5, result.Steps);
        Assert.Equal(5, File.ReadAllLines(Path.Combine(forked.OutputDir, "metrics.jsonl")).Length);
        Assert.Equal(2, File.ReadAllLines(_dir.Combine("run", "metrics.jsonl")).Length);
        Assert.Contains("forked", File.ReadAllText(Path.Combine(forked.OutputDir, RunProvenance.LogFile)));
        Assert.Throws<ConfigException>(() => RunProvenance.Fork(_dir.Combine("run"), forked));
    }

    public void Dispose() => _dir.Dispose();
}
