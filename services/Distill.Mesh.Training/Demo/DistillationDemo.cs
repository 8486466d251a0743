using System.Diagnostics;
using System.Text.Json;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Evaluation;
using Distill.Mesh.Training.Metrics;
using Distill.Mesh.Training.Recipes;
using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Training.Demo;

/// <summary>
/// The main job on embedded defaults: a teacher trained here on generated sentences (cached after
/// the first run), a smaller student trained on a small sample of them with plain fine-tuning and
/// with KD, a table of what each learned on held-out data (KD's advantage is measured), and a
/// plot of both students' training curves (demo-loss.png and .svg in the work folder).
/// </summary>
public static class DistillationDemo
{
    /// <summary>Bump when the demo's data or teacher change, so a cached teacher is rebuilt.</summary>
    public const string Version = "demo-v1";

    public sealed record Row(string Model, double Perplexity, double? KlToTeacher, double? Top1Agreement, double AgreementAccuracy);

    /// <summary>Trains a student run to completion and returns its model folder.</summary>
    public delegate Task<string> StudentTrainer(TrainConfig config, IProgress<TrainEvent>? progress, CancellationToken cancellationToken);

    /// <param name="workdir">Where data, models and runs go.</param>
    /// <param name="log">Progress lines.</param>
    /// <param name="cancellationToken">Stops the demo.</param>
    /// <param name="trainStudent">How the student runs are trained (default: in this process; `demo --mesh`: through the services).</param>
    /// <param name="progressFor">The step progress of each training phase ("teacher", "student SFT", "student KD"); null: none.</param>
    public static async Task<IReadOnlyList<Row>> RunAsync(string workdir, TextWriter log, CancellationToken cancellationToken, StudentTrainer? trainStudent = null,
        Func<string, IProgress<TrainEvent>?>? progressFor = null)
    {
        trainStudent ??= async (config, progress, token) => (await RecipeRunner.RunAsync(config, RerunPolicy.Resume, progress, token)).ModelPath!;
        var watch = Stopwatch.StartNew();
        Directory.CreateDirectory(workdir);
        var data = Path.Combine(workdir, "data");
        WriteSentences(Path.Combine(data, "teacher.jsonl"), new DemoGrammar(1), 3000);
        WriteSentences(Path.Combine(data, "student.jsonl"), new DemoGrammar(2), 160);
        WriteSentences(Path.Combine(data, "heldout.jsonl"), new DemoGrammar(3), 300);

        var teacher = Path.Combine(workdir, "teacher");
        if (File.Exists(Path.Combine(teacher, "demo_version.txt")) && File.ReadAllText(Path.Combine(teacher, "demo_version.txt")) == Version)
        {
            log.WriteLine($"teacher: cached in {teacher}");
        }
        else
        {
            log.WriteLine("teacher: training a 4-layer model on 3,000 generated sentences (once; cached afterwards)…");
            var init = Initialize(Path.Combine(workdir, "teacher-init"), hidden: 128, layers: 4, intermediate: 384, seed: 11);
            var result = await SftRecipe.RunAsync(Fresh(TeacherConfig(workdir, init)), RerunPolicy.Resume, progressFor?.Invoke("teacher"), cancellationToken);
            if (Directory.Exists(teacher))
                Directory.Delete(teacher, recursive: true);
            Directory.Move(result.ModelPath!, teacher);
            File.WriteAllText(Path.Combine(teacher, "demo_version.txt"), Version);
            log.WriteLine($"teacher: trained in {watch.Elapsed.TotalSeconds:F0} s");
        }

        var student = Initialize(Path.Combine(workdir, "student-init"), hidden: 64, layers: 2, intermediate: 128, seed: 12);
        log.WriteLine("student: fine-tuning on 160 sentences (hard labels)…");
        var sftModel = await trainStudent(Fresh(SftConfig(workdir, student)), progressFor?.Invoke("student SFT"), cancellationToken);
        log.WriteLine("student: distilling on the same 160 sentences (teacher's distributions, forward KL)…");
        var kdModel = await trainStudent(Fresh(KdConfig(workdir, student, teacher)), progressFor?.Invoke("student KD"), cancellationToken);
        foreach (var plot in new[] { "demo-loss.png", "demo-loss.svg" }.Select(n => Path.Combine(workdir, n)))
        {
            // Each student's run folder holds its model folder and metrics.jsonl.
            MetricsPlot.Write(plot, [new("student KD", MetricsFile.Read(Path.GetDirectoryName(kdModel)!)), new("student SFT", MetricsFile.Read(Path.GetDirectoryName(sftModel)!))],
                "distill demo: KD vs SFT");
            log.WriteLine($"plot: {plot}");
        }

        log.WriteLine("evaluating on 300 held-out sentences and 96 agreement probes…");
        var heldout = await DatasetFile.ReadAsync(Path.Combine(data, "heldout.jsonl"), cancellationToken);
        using var reference = InProcessTeacher.Load(teacher);
        var rows = new List<Row>();
        foreach (var (name, folder) in new[] { ("teacher", teacher), ("student before", student), ("student SFT", sftModel), ("student KD", kdModel) })
            rows.Add(await EvaluateAsync(name, folder, heldout, name == "teacher" ? null : reference, cancellationToken));
        log.WriteLine($"demo finished in {watch.Elapsed.TotalSeconds:F0} s");
        return rows;
    }

    /// <summary>Optimizer steps of each student run (about 50 epochs of 160 sentences at batch 16).</summary>
    public const int StudentSteps = 500;

    /// <summary>Formats the table.</summary>
    public static string Table(IReadOnlyList<Row> rows)
    {
        var lines = new List<string>
        {
            "| model | held-out perplexity | KL to teacher | same top-1 token as teacher | subject–verb probes right |",
            "|---|---:|---:|---:|---:|",
        };
        lines.AddRange(rows.Select(r => $"| {r.Model} | {r.Perplexity:F3} | {(r.KlToTeacher is { } kl ? kl.ToString("F4") : "–")} | {(r.Top1Agreement is { } a ? a.ToString("P1") : "–")} | {r.AgreementAccuracy:P1} |"));
        return string.Join("\n", lines);
    }

    private static async Task<Row> EvaluateAsync(string name, string folder, IReadOnlyList<DatasetRecord> heldout, ITeacherSignal? teacher, CancellationToken cancellationToken)
    {
        using var model = CausalLanguageModel.FromPretrained(folder);
        var tokenizer = TokenizerLoader.Load(folder);
        var builder = new ExampleBuilder(tokenizer, DatasetLayout.Text, new ExampleOptions { MaxLength = 128 });
        var examples = heldout.Select(builder.Build).ToList();
        var metrics = await Evaluator.EvaluateAsync(model, examples, teacher, model.Config.VocabSize, tokenizer.PadTokenId ?? 0, cancellationToken: cancellationToken);
        var probes = DemoGrammar.AgreementProbes().Select(p => new ChoiceItem(p.Context, [p.Right, p.Wrong], 0)).ToList();
        var agreement = MultipleChoice.Evaluate(model, tokenizer, probes);
        return new Row(name, metrics.Perplexity, metrics.KlToTeacher, metrics.Top1Agreement, agreement.Accuracy);
    }

    private static string Initialize(string folder, int hidden, int layers, int intermediate, long seed)
    {
        var config = new LlamaConfig
        {
            ModelType = "llama",
            VocabSize = ByteTokenizerBuilder.VocabularySize,
            HiddenSize = hidden,
            IntermediateSize = intermediate,
            NumHiddenLayers = layers,
            NumAttentionHeads = 4,
            NumKeyValueHeads = 2,
            MaxPositionEmbeddings = 256,
            RmsNormEps = 1e-5,
            RopeTheta = 10000,
            BosTokenId = 256,
            EosTokenId = [257],
        };
        using var model = new CausalLanguageModel(config);
        model.InitializeWeights(seed);
        model.SavePretrained(folder);
        ByteTokenizerBuilder.Write(folder);
        return folder;
    }

    /// <summary>The teacher's training run (plain fine-tuning on the 3,000 sentences).</summary>
    internal static TrainConfig TeacherConfig(string workdir, string init) =>
        Config("sft", init, Path.Combine(workdir, "data", "teacher.jsonl"), Path.Combine(workdir, "runs", "teacher"), steps: 400, batch: 32, lr: 3e-3);

    /// <summary>The student's plain fine-tuning run.</summary>
    internal static TrainConfig SftConfig(string workdir, string student) =>
        Config("sft", student, Path.Combine(workdir, "data", "student.jsonl"), Path.Combine(workdir, "runs", "sft"), steps: StudentSteps, batch: 16, lr: 3e-3);

    /// <summary>The student's distillation run (the teacher's full distributions, forward KL).</summary>
    internal static TrainConfig KdConfig(string workdir, string student, string teacher)
    {
        var config = Config("kd", student, Path.Combine(workdir, "data", "student.jsonl"), Path.Combine(workdir, "runs", "kd"), steps: StudentSteps, batch: 16, lr: 3e-3);
        config.Teachers = [new TeacherConfig { Model = teacher }];
        config.Loss = new LossConfig { Kind = "fkl", KdRatio = 1.0, Temperature = 1.0 };
        return config;
    }

    /// <summary>The demo starts its runs over each time.</summary>
    private static TrainConfig Fresh(TrainConfig config)
    {
        if (Directory.Exists(config.OutputDir))
            Directory.Delete(config.OutputDir, recursive: true);
        return config;
    }

    private static TrainConfig Config(string recipe, string model, string dataset, string output, int steps, int batch, double lr)
    {
        return new TrainConfig
        {
            Recipe = recipe,
            Seed = 7,
            OutputDir = output,
            Student = new StudentConfig { Model = model },
            Dataset = new DatasetConfig { Path = dataset, MaxLength = 128, EvalFraction = 0 },
            Training = new TrainingConfig
            {
                MaxSteps = steps,
                BatchSize = batch,
                Optimizer = new OptimizerConfig { Name = "adamw", Lr = lr, WeightDecay = 0.01 },
                Scheduler = new SchedulerConfig { Name = "cosine", WarmupSteps = steps / 20 },
                LogEvery = 10,
            },
        };
    }

    private static void WriteSentences(string path, DemoGrammar grammar, int count)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var lines = Enumerable.Range(0, count).Select(_ => JsonSerializer.Serialize(new { text = grammar.Sentence() }));
        Specs.Storage.AtomicFile.WriteAllText(path, string.Join("\n", lines) + "\n");
    }
}
