using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Teachers;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// What every recipe sets up and writes the same way: the student (with LoRA when configured), its
/// tokenizer, the dataset split into examples, and the outputs at the end. The training loops
/// themselves live in the recipes.
/// </summary>
public sealed class RecipeRun : IDisposable
{
    private RecipeRun(TrainConfig config, CausalLanguageModel student, TextTokenizer tokenizer, LoraConfig? lora)
    {
        Config = config;
        Student = student;
        Tokenizer = tokenizer;
        Lora = lora;
    }

    public TrainConfig Config { get; }

    public CausalLanguageModel Student { get; }

    public TextTokenizer Tokenizer { get; }

    public LoraConfig? Lora { get; }

    public IReadOnlyList<TokenizedExample> Train { get; private set; } = [];

    public IReadOnlyList<TokenizedExample> Eval { get; private set; } = [];

    /// <summary>Which examples each micro-batch takes (set when the data is loaded).</summary>
    public IDataOrder Order { get; private set; } = new DataOrder([], 1, 0);

    public int PadTokenId => PaddingId(Tokenizer);

    /// <summary>The id batches are padded with.</summary>
    public static int PaddingId(TextTokenizer tokenizer) => tokenizer.PadTokenId ?? tokenizer.EosTokenId ?? 0;

    /// <summary>
    /// Seeds torch, checks the output folder holds no other run (see <see cref="RunProvenance"/>),
    /// loads the student and its tokenizer, attaches LoRA.
    /// </summary>
    public static RecipeRun Start(TrainConfig config, RerunPolicy rerun = RerunPolicy.Resume)
    {
        // Every value checked before anything is written (the output folder included).
        ConfigBinder.Fail("config", TrainConfigValidator.Problems(config, checkPaths: true));
        torch.manual_seed(config.Seed);
        RunProvenance.Prepare(config, rerun);
        var device = config.Student.Device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase) && !torch.cuda.is_available()
            ? throw new ConfigException($"student.device '{config.Student.Device}' but CUDA is not available")
            : torch.device(config.Student.Device);
        var student = CausalLanguageModel.FromPretrained(config.Student.Model, DType(config.Student.Dtype), device);
        var tokenizer = TokenizerLoader.Load(config.Student.Model);
        LoraConfig? lora = null;
        if (config.Student.Lora is { InitFrom: { } initFrom } fromAdapter)
        {
            // An extracted (or earlier trained) adapter as the starting point of the LoRA.
            try
            {
                lora = LoraAdapter.Load(student, initFrom, fromAdapter.Dropout);
            }
            catch (Exception e) when (e is AdapterFormatException or FileNotFoundException)
            {
                throw new ConfigException($"student.lora.init_from: {e.Message}", e);
            }

            lora.BaseModelNameOrPath = config.Student.Model;
        }
        else if (config.Student.Lora is { } settings)
        {
            lora = LoraConfig.For(settings.R, settings.Alpha, [.. settings.TargetModules]);
            lora.LoraDropout = settings.Dropout;
            lora.BaseModelNameOrPath = config.Student.Model;
            LoraAdapter.Attach(student, lora, config.Seed);
        }

        student.Body.ActivationCheckpointing = config.Training.ActivationCheckpointing;
        student.train();
        return new RecipeRun(config, student, tokenizer, lora);
    }

    /// <summary>
    /// Reads, tokenizes and splits the dataset (a streamed one: opens it and reads its evaluation
    /// examples); checks every label fits the vocabulary the loss uses.
    /// </summary>
    public async Task LoadDataAsync(int vocabulary, CancellationToken cancellationToken, IProgress<TrainEvent>? progress = null)
    {
        if (Streams(Config))
        {
            (Order, Eval) = await OpenDataAsync(Config, Tokenizer, vocabulary, cancellationToken, progress);
            return;
        }

        (Train, Eval) = await LoadExamplesAsync(Config, Tokenizer, vocabulary, cancellationToken, progress);
        if (Train.Count < Config.Training.BatchSize)
            throw new ConfigException($"training.batch_size {Config.Training.BatchSize} exceeds the {Train.Count} training examples");
        Order = new DataOrder(Train, Config.Training.BatchSize, Config.Seed);
    }

    /// <summary>Whether the run reads its dataset as a stream (dataset.streaming, or a mixture).</summary>
    public static bool Streams(TrainConfig config) => config.Dataset.Streaming || config.Dataset.Sources.Count > 0;

    /// <summary>The run's data order and held-out examples, exactly as the train stage sees them (streamed or read whole).</summary>
    public static async Task<(IDataOrder Order, IReadOnlyList<TokenizedExample> Eval)> OpenDataAsync(
        TrainConfig config, TextTokenizer tokenizer, int vocabulary, CancellationToken cancellationToken, IProgress<TrainEvent>? progress = null)
    {
        if (!Streams(config))
        {
            var (train, eval) = await LoadExamplesAsync(config, tokenizer, vocabulary, cancellationToken, progress);
            return (new DataOrder(train, config.Training.BatchSize, config.Seed), eval);
        }

        var stream = await Task.Run(() => DatasetStream.Open(config, tokenizer, vocabulary), cancellationToken);
        return (new StreamedDataOrder(stream, config.Training.BatchSize), stream.Eval);
    }

    /// <summary>
    /// The run's training examples (packed when configured) and its held-out split, exactly as the
    /// train stage sees them: what precompute scores and evaluate measures.
    /// </summary>
    /// <remarks>A dataset of more than <see cref="TokenizeReportRows"/> rows reports its tokenising to <paramref name="progress"/> every tenth of the way.</remarks>
    public static async Task<(IReadOnlyList<TokenizedExample> Train, IReadOnlyList<TokenizedExample> Eval)> LoadExamplesAsync(
        TrainConfig config, TextTokenizer tokenizer, int vocabulary, CancellationToken cancellationToken, IProgress<TrainEvent>? progress = null)
    {
        var records = (await DatasetFile.ReadAsync(config.Dataset.Path, cancellationToken)).Select(r => ColumnMap.Apply(r, config.Dataset.Columns)).ToList();
        var builder = new ExampleBuilder(tokenizer, DatasetLayouts.Detect(records, config.Dataset.Columns), new ExampleOptions
        {
            MaxLength = config.Dataset.MaxLength,
            TrainOnInputs = config.Dataset.TrainOnInputs,
            ChatFormat = TrainingFactory.ChatFormat(config.Dataset.ChatFormat),
        });
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var examples = records.Select((record, i) =>
        {
            if (progress is not null && records.Count > TokenizeReportRows && (i + 1) % Math.Max(1, records.Count / 10) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var rate = (i + 1) / Math.Max(watch.Elapsed.TotalSeconds, 1e-3);
                // The note is for readers of text (the trainer's Watch stream); the count for displays that draw a bar.
                progress.Report(TrainEvent.Note($"tokenised {i + 1:N0} of {records.Count:N0} rows ({rate:N0} rows/s, ETA {TimeSpan.FromSeconds((records.Count - i - 1) / rate):m\\:ss})")
                    with { Preparing = new PreparationProgress("tokenising", i + 1, records.Count, "rows") });
            }

            return builder.Build(record);
        }).Where(e => e.InputIds.Length >= 2).ToList();
        var tooLarge = examples.SelectMany(e => e.InputIds).Where(id => id >= vocabulary).Distinct().Take(5).ToList();
        if (tooLarge.Count > 0)
            throw new IncompatibleTeacherException($"token ids {string.Join(", ", tooLarge)} are outside the {vocabulary} ids the models share");
        var (train, eval) = Batching.Split(examples, config.Dataset.EvalFraction, config.Seed);
        return (config.Dataset.Packing ? Packing.Pack(train, config.Dataset.MaxLength) : train, eval);
    }

    /// <summary>Datasets up to this many rows tokenise without progress reports.</summary>
    public const int TokenizeReportRows = 20_000;

    /// <summary>Trains on these examples instead of the dataset's (sequence-level KD: the teacher's responses).</summary>
    public void UseTrainingExamples(IReadOnlyList<TokenizedExample> examples)
    {
        if (examples.Count < Config.Training.BatchSize)
            throw new ConfigException($"training.batch_size {Config.Training.BatchSize} exceeds the {examples.Count} training examples");
        Train = examples;
        Order = new DataOrder(examples, Config.Training.BatchSize, Config.Seed);
    }

    /// <summary>Optimizer steps the run takes.</summary>
    public long TotalSteps() => TotalSteps(Config, Order);

    /// <summary>Optimizer steps a run of <paramref name="config"/> takes over <paramref name="order"/>.</summary>
    public static long TotalSteps(TrainConfig config, IDataOrder order)
    {
        var accumulation = Math.Max(1, config.Training.GradientAccumulation);
        return config.Training.MaxSteps ?? Math.Max(1, config.Training.Epochs * (order.BatchesPerEpoch
            ?? throw new ConfigException("training.max_steps: a streamed dataset has no length known ahead; give training.max_steps")) / accumulation);
    }

    /// <summary>The micro-batches of optimizer step <paramref name="step"/> (1-based), padded and on the student's device.</summary>
    public List<Batch> MicroBatches(IDataOrder order, long step)
    {
        var accumulation = Math.Max(1, Config.Training.GradientAccumulation);
        return Enumerable.Range(0, accumulation)
            .Select(m => Batching.Collate(order.MicroBatch((step - 1) * accumulation + m), PadTokenId, Student.Device)).ToList();
    }

    /// <summary>Whether step <paramref name="step"/> runs an intermediate evaluation.</summary>
    public bool EvalDue(long step, long totalSteps) =>
        Config.Training.EvalEvery > 0 && step % Config.Training.EvalEvery == 0 && step < totalSteps && Eval.Count > 0;

    /// <summary>Appends a step's event to the history and the metric loggers, reports it, and checkpoints when due.</summary>
    public void Record(TrainEvent e, List<TrainEvent> history, IProgress<TrainEvent>? progress, Optimization.TrainingOptimizer optimizer, Metrics.IMetricLogger metrics)
    {
        history.Add(e);
        metrics.Log(e);
        Telemetry.TrainingMetrics.RecordStep(Config.OutputDir, Config.Recipe, e);
        if (e.Step % Math.Max(1, Config.Training.LogEvery) == 0 || e.Eval is not null || e.Step == e.TotalSteps)
            progress?.Report(e);
        if (Config.Training.CheckpointEvery > 0 && e.Step % Config.Training.CheckpointEvery == 0 && e.Step < e.TotalSteps)
            Checkpoint(e.Step, optimizer, history, metrics);
    }

    /// <summary>Makes the history durable (the checkpoint relies on it), then writes the checkpoint of <paramref name="step"/>.</summary>
    public void Checkpoint(long step, Optimization.TrainingOptimizer optimizer, IReadOnlyList<TrainEvent> history, Metrics.IMetricLogger metrics)
    {
        metrics.Flush(history);
        TrainingCheckpoint.Save(Config.OutputDir, step, Student, optimizer, history, CheckpointRetention.For(Config.Training),
            Order.StateAt(step * Math.Max(1, Config.Training.GradientAccumulation)));
    }

    /// <summary>Writes the student (PEFT adapter or HF folder), metrics and the loss plots.</summary>
    public TrainResult Finish(long steps, bool completed, IReadOnlyList<TrainEvent> history, EvalResult? finalEval, Metrics.IMetricLogger metrics)
    {
        string? modelPath = null, adapterPath = null;
        if (completed)
        {
            if (Lora is not null)
            {
                adapterPath = Path.Combine(Config.OutputDir, "adapter");
                LoraAdapter.Save(Student, Lora, adapterPath);
            }
            else
            {
                modelPath = Path.Combine(Config.OutputDir, "model");
                Student.SavePretrained(modelPath);
                ModelFolderFiles.Copy(Config.Student.Model, modelPath);
            }
        }

        metrics.Flush(history);
        // The final evaluation (not a step's event) is drawn at the last step.
        IReadOnlyList<TrainEvent> drawn = finalEval is not null && history.Count > 0 ? [.. history.Take(history.Count - 1), history[^1] with { Eval = finalEval }] : history;
        Metrics.MetricsPlot.WriteRun(Config.OutputDir, drawn, $"{Config.Recipe}: {Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(Config.OutputDir)))}");
        return new TrainResult(Config.OutputDir, steps, completed, modelPath, adapterPath, finalEval);
    }

    public static ScalarType DType(string name) => name.ToLowerInvariant() switch
    {
        "float32" or "fp32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        _ => throw new ConfigException($"dtype '{name}' is not one of float32, bfloat16"),
    };

    public void Dispose() => Student.Dispose();
}
