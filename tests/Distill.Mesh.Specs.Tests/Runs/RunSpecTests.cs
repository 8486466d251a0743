using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Specs.Runs;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Specs.Tests.Runs;

public sealed class RunSpecTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public RunSpecTests()
    {
        foreach (var model in new[] { "student", "teacher", "teacher2" })
        {
            Directory.CreateDirectory(_dir.Combine(model));
            File.WriteAllText(_dir.Combine(model, "config.json"), "{}");
        }

        File.WriteAllText(_dir.Combine("data.jsonl"), "{\"text\": \"a\"}\n");
    }

    private string Spec(string extra = "") => $$"""
        recipe: kd
        student: { model: "{{_dir.Combine("student")}}" }
        teachers: [ { model: "{{_dir.Combine("teacher")}}" } ]
        signal: { format: topk, k: 16 }
        dataset: { path: "{{_dir.Combine("data.jsonl")}}", eval_fraction: 0.1 }
        training: { max_steps: 10, batch_size: 2 }
        {{extra}}
        """;

    private static List<string> Problems(string yaml, IEnumerable<string>? overrides = null, bool mesh = true)
    {
        ParsedRunSpec parsed;
        try
        {
            parsed = RunSpecLoader.Parse(yaml, overrides ?? [], folder: null, "spec");
        }
        catch (ConfigException e)
        {
            return [e.Message];
        }

        return RunSpecValidator.Problems(parsed, new RunValidation(CheckPaths: true, ThroughMesh: mesh));
    }

    [Fact]
    public void GoodSpec_HasNoProblems_DefaultsToTheTrainStage_AndHashesStably()
    {
        var a = RunSpecLoader.Parse(Spec(), [], null, "spec");
        var b = RunSpecLoader.Parse(Spec("mesh: { teacher: \"http://t:7101\" }"), [], null, "spec");
        var c = RunSpecLoader.Parse(Spec(), ["mesh.teacher=http://t:7101"], null, "spec");

        Assert.Empty(RunSpecValidator.Problems(a, new RunValidation(true, true)));
        Assert.Equal([Stage.Train], a.Spec.Stages);
        Assert.Equal(b.Sha256, c.Sha256);
        Assert.NotEqual(a.Sha256, b.Sha256);
        Assert.Equal("http://t:7101", c.Spec.Mesh.Teacher);
        Assert.Equal(a.Sha256, RunSpecLoader.Parse(a.Text, [], null, "spec").Sha256); // the canonical text is itself a spec of the same run
    }

    [Theory]
    [InlineData("trainign: { max_steps: 3 }", "trainign (line 7): unknown key; did you mean 'training'?")]
    [InlineData("stagse: [train]", "did you mean 'stages'?")]
    [InlineData("seed: abc", "seed (line 7): 'abc' is not an integer")]
    [InlineData("loss: { temperature: hot }", "loss.temperature (line 7): 'hot' is not a number")]
    [InlineData("loss: null", "loss (line 7): null is not allowed here")]
    [InlineData("mesh: [1, 2]", "mesh (line 7): [1,2] is not a mapping")]
    [InlineData("publish: { name: x, tags: [2024] }", "publish.tags.0 (line 7): 2024 is not a string (quote it)")]
    [InlineData("extract: { rnak: 4 }", "did you mean 'rank'?")]
    public void BindingProblems_NameTheKeyTheValueAndTheLine(string extra, string expected)
    {
        Assert.Contains(expected, string.Join("\n", Problems(Spec(extra))));
    }

    [Theory]
    [InlineData("training.batch_size=0", "training.batch_size: 0 is out of range; it must be in [1, 65536]")]
    [InlineData("training.optimizer.lr=-1", "training.optimizer.lr: -1 must be greater than 0")]
    [InlineData("signal.k=0", "signal.k: 0 is out of range")]
    [InlineData("training.optimizer.betas=[2,3]", "training.optimizer.betas: [2, 3] must be two numbers in [0, 1)")]
    [InlineData("teachers.0.weight=0", "teachers.0.weight: 0 must be greater than 0")]
    [InlineData("training.scheduler.warmup_ratio=2", "training.scheduler.warmup_ratio: 2 is out of range")]
    [InlineData("student.lora={r: 4, alpha: 0}", "student.lora.alpha: 0 must be greater than 0")]
    [InlineData("training.gradient_accumulation=-2", "training.gradient_accumulation: -2 is out of range")]
    [InlineData("loss.kind=kl", "loss.kind: 'kl' is not one of")]
    [InlineData("loss.kd_ratio=0", "loss.kd_ratio: 0 leaves only the cross-entropy term")]
    [InlineData("loss.temperature=1e-300", "loss.temperature: 1E-300 is out of range")]
    [InlineData("signal.format=dense", "dense (full logits) cannot come from a teacher service")]
    [InlineData("training.optimiser.lr=1", "training.optimiser: unknown key; did you mean 'optimizer'?")]
    [InlineData("teachers.3.model=/x", "'3' is not an index of the 1-item list")]
    [InlineData("stages=[train, precompute]", "out of order")]
    [InlineData("stages=[tran]", "did you mean 'train'?")]
    [InlineData("stages=[evaluate]", "evaluate needs a train or extract stage")]
    [InlineData("stages=[train, publish]", "publish stage needs publish.name")]
    [InlineData("publish={name: 'Bad Name'}", "publish.name")]
    [InlineData("student.device=gpu", "student.device: 'gpu' is not cpu, cuda or cuda:N")]
    [InlineData("mesh.trainer=ftp://x", "mesh.trainer: 'ftp://x' is not a service address")]
    public void BadValues_AreRefusedNamingTheKeyAndTheRange(string item, string expected)
    {
        var overrides = new List<string> { item };
        if (item.StartsWith("signal.format", StringComparison.Ordinal))
            overrides.Add("teachers.0.endpoint=http://teacher:7101");

        Assert.Contains(expected, string.Join("\n", Problems(Spec(), overrides)));
    }

    [Fact]
    public void Paths_AreCheckedToExist_RelativeOnesRefused_AndTheOutputFolderIsNeverAModel()
    {
        Assert.Contains("student.model: no folder at", string.Join("\n", Problems(Spec(), [$"student.model={_dir.Combine("nope")}"])));
        Assert.Contains("dataset.path: no file at", string.Join("\n", Problems(Spec(), [$"dataset.path={_dir.Combine("nope.jsonl")}"])));
        Assert.Contains("student.model: 'models/s' is a relative path", string.Join("\n", Problems(Spec(), ["student.model=models/s"])));
        Assert.Contains("remove output_dir", string.Join("\n", Problems(Spec(), [$"output_dir={_dir.Combine("out")}"])));
        var local = string.Join("\n", Problems(Spec(), [$"output_dir={_dir.Combine("student")}"], mesh: false));
        Assert.Contains("output_dir", local);
        Assert.Contains("holds student.model", local);
    }

    [Fact]
    public void OneTeacherAddress_ForAMixture_IsRefused()
    {
        var mixture = Spec().Replace($"teachers: [ {{ model: \"{_dir.Combine("teacher")}\" }} ]",
            $"teachers: [ {{ model: \"{_dir.Combine("teacher")}\" }}, {{ model: \"{_dir.Combine("teacher2")}\" }} ]");

        Assert.Contains("give each teacher its own teachers[i].endpoint", string.Join("\n", Problems(mixture, ["mesh.teacher=http://t:7101"])));
        Assert.Empty(Problems(mixture, ["teachers.0.endpoint=http://a:7101", "teachers.1.endpoint=http://b:7101"]));
    }

    [Fact]
    public void EveryProblem_IsReportedAtOnce()
    {
        var problems = Problems(Spec(), ["training.batch_size=0", "loss.kind=kl", "signal.k=-5"]);

        Assert.Equal(3, problems.Count);
    }

    public void Dispose() => _dir.Dispose();
}
