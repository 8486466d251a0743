using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Testing;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Recipes;
using Distill.Mesh.Training.Teachers;
using Distill.Mesh.Training.Tests.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Tests.Recipes;

[Collection(nameof(GlobalRandomState))]
public sealed class RecipeTests : IDisposable
{
    private readonly TempFolder _dir = new();

    private string Teacher(string family = "llama", long seed = 1, Action<DecoderConfig>? edit = null)
    {
        var config = TinyModels.Config(family);
        edit?.Invoke(config);
        using var model = TinyModels.Create(family, seed, config: config);
        return TinyModels.SaveWithByteTokenizer(model, _dir.Combine($"teacher-{family}-{seed}-{config.VocabSize}"));
    }

    private string Student()
    {
        var config = TinyModels.Config("qwen2");
        config.NumHiddenLayers = 1;
        using var model = TinyModels.Create("qwen2", 2, config: config);
        return TinyModels.SaveWithByteTokenizer(model, _dir.Combine("student"));
    }

    private string Dataset()
    {
        var path = _dir.Combine("data.jsonl");
        var lines = Enumerable.Range(0, 24).Select(i => $"{{\"prompt\": \"Q{i % 7}: {i} plus {i % 3}?\", \"completion\": \" {i + i % 3}\"}}");
        File.WriteAllLines(path, lines);
        return path;
    }

    private TrainConfig Config(string output, int steps = 12) => new()
    {
        Recipe = "kd",
        Seed = 5,
        OutputDir = _dir.Combine(output),
        Student = new StudentConfig { Model = Student() },
        Teachers = [new TeacherConfig { Model = Teacher() }],
        Loss = new LossConfig { Kind = "fkl", KdRatio = 0.9, Temperature = 2, T2 = true },
        Dataset = new DatasetConfig { Path = Dataset(), MaxLength = 48, EvalFraction = 0.15 },
        Training = new TrainingConfig
        {
            MaxSteps = steps,
            BatchSize = 4,
            GradientAccumulation = 2,
            Optimizer = new OptimizerConfig { Lr = 3e-3 },
            Scheduler = new SchedulerConfig { Name = "cosine", WarmupSteps = 2 },
        },
    };

    [Fact]
    public async Task Kd_TinyRun_LossFallsAndOutputsAreWritten()
    {
        var config = Config("kd", steps: 30);

        var result = await KdRecipe.RunAsync(config, RerunPolicy.Resume, null, default);

        var history = File.ReadAllLines(Path.Combine(config.OutputDir, "metrics.jsonl"));
        Assert.Equal(30, history.Length);
        var losses = history.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("kd_loss").GetDouble()).ToList();
        Assert.True(losses.TakeLast(5).Average() < 0.7 * losses.Take(5).Average(), $"KD loss {losses.Take(5).Average():F4} → {losses.TakeLast(5).Average():F4}");
        using var student = CausalLanguageModel.FromPretrained(result.ModelPath!);
        Assert.True(File.Exists(Path.Combine(result.ModelPath!, "tokenizer.json")));
        PlotAssert.Png(Path.Combine(config.OutputDir, "loss.png"));
        PlotAssert.Svg(Path.Combine(config.OutputDir, "loss.svg"), "loss", "kd", "ce", "eval perplexity");
        Assert.NotNull(result.FinalEval!.KlToTeacher);
    }

    [Fact]
    public async Task Kd_StoppedAndResumed_GivesTheSameLossesAndWeights()
    {
        var straight = Config("straight", steps: 8);
        straight.Student.Lora = new LoraSettings { R = 4, Alpha = 8, Dropout = 0.1, TargetModules = ["all-linear"] };
        straight.Signal = new SignalConfig { Format = "sampled", Samples = 6 };
        var interrupted = Config("interrupted", steps: 8);
        interrupted.Student.Lora = straight.Student.Lora;
        interrupted.Signal = straight.Signal;

        var expected = await KdRecipe.RunAsync(straight, RerunPolicy.Resume, null, default);
        using var cancel = new CancellationTokenSource();
        var stop = new Progress<TrainEvent>();
        var first = await KdRecipe.RunAsync(interrupted, RerunPolicy.Resume, new StopAfter(3, cancel), cancel.Token);
        var second = await KdRecipe.RunAsync(interrupted, RerunPolicy.Resume, null, default);

        Assert.False(first.Completed);
        Assert.Equal(3, first.Steps);
        Assert.True(second.Completed);
        var a = File.ReadAllLines(Path.Combine(straight.OutputDir, "metrics.jsonl")).Select(Loss).ToList();
        var b = File.ReadAllLines(Path.Combine(interrupted.OutputDir, "metrics.jsonl")).Select(Loss).ToList();
        Assert.Equal(a, b);
        using var left = Modeling.Checkpoints.SafetensorsFile.Open(Path.Combine(expected.AdapterPath!, "adapter_model.safetensors"));
        using var right = Modeling.Checkpoints.SafetensorsFile.Open(Path.Combine(second.AdapterPath!, "adapter_model.safetensors"));
        foreach (var tensor in left.Tensors)
            TensorAssert.Equal(left.ReadTensor(tensor.Name), right.ReadTensor(tensor.Name), tensor.Name);

        static double Loss(string line) => System.Text.Json.JsonDocument.Parse(line).RootElement.GetProperty("loss").GetDouble();
    }

    [Fact]
    public async Task Kd_StreamedMixture_StoppedAndResumed_GivesTheSameLossesAndWeights()
    {
        var other = _dir.Combine("other.jsonl");
        File.WriteAllLines(other, Enumerable.Range(0, 15).Select(i => $"{{\"text\": \"{i} times {i % 4} is {i * (i % 4)}\"}}"));
        TrainConfig Streamed(string output)
        {
            var config = Config(output, steps: 7);
            config.Dataset.Sources = [new DatasetSourceConfig { Path = config.Dataset.Path, Weight = 2 }, new DatasetSourceConfig { Path = other, Weight = 1 }];
            config.Dataset.Path = "";
            config.Dataset.ShuffleBuffer = 5;
            return config;
        }

        var straight = Streamed("streamed-straight");
        var interrupted = Streamed("streamed-interrupted");
        var expected = await KdRecipe.RunAsync(straight, RerunPolicy.Resume, null, default);
        using var cancel = new CancellationTokenSource();
        var first = await KdRecipe.RunAsync(interrupted, RerunPolicy.Resume, new StopAfter(3, cancel), cancel.Token);
        var state = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(TrainingCheckpoint.Latest(interrupted.OutputDir)!, "data_state.json")))!;
        var second = await KdRecipe.RunAsync(interrupted, RerunPolicy.Resume, null, default);

        Assert.Equal(3, first.Steps);
        Assert.Equal(2, state["sources"]!.AsArray().Count);
        var a = File.ReadAllLines(Path.Combine(straight.OutputDir, "metrics.jsonl")).Select(Loss).ToList();
        var b = File.ReadAllLines(Path.Combine(interrupted.OutputDir, "metrics.jsonl")).Select(Loss).ToList();
        Assert.Equal(7, a.Count);
        Assert.Equal(a, b);
        Assert.NotNull(expected.FinalEval);
        using var left = Modeling.Checkpoints.SafetensorsFile.Open(Path.Combine(expected.ModelPath!, "model.safetensors"));
        using var right = Modeling.Checkpoints.SafetensorsFile.Open(Path.Combine(second.ModelPath!, "model.safetensors"));
        foreach (var tensor in left.Tensors)
            TensorAssert.Equal(left.ReadTensor(tensor.Name), right.ReadTensor(tensor.Name), tensor.Name);

        static double Loss(string line) => System.Text.Json.JsonDocument.Parse(line).RootElement.GetProperty("loss").GetDouble();
    }

    [Fact]
    public async Task Precompute_ShardsOfAStreamedDataset_ScoreExactlyTheMicroBatchesTrainingReads()
    {
        var config = Config("precompute-streamed", steps: 5);
        config.Dataset.Streaming = true;
        config.Dataset.ShuffleBuffer = 7;
        using var teacher = InProcessTeacher.Load(config.Teachers[0].Model);
        var scored = new SortedDictionary<long, long[]>();
        foreach (var shard in new[] { 0, 1 })
        {
            await SignalPrecompute.RunAsync(config, teacher.Describe(), (batch, request, _) =>
            {
                scored.Add(request.Seed - config.Seed * 1_000_003L, batch.InputIds.data<long>().ToArray());
                return Task.CompletedTask;
            }, shard, shards: 2, progress: null, default);
        }

        var tokenizer = Modeling.Tokenization.TokenizerLoader.Load(config.Student.Model);
        var (order, _) = await RecipeRun.OpenDataAsync(config, tokenizer, tokenizer.VocabularySize, default);
        var expected = Enumerable.Range(0, 10).Select(i =>
        {
            using var batch = Training.Datasets.Batching.Collate(order.MicroBatch(i), RecipeRun.PaddingId(tokenizer));
            return batch.InputIds.data<long>().ToArray();
        }).ToList();

        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), scored.Keys);
        Assert.Equal(expected, scored.Values);
    }

    [Fact]
    public async Task Kd_LoraInitFromAnAdapter_StartsWhereTheAdapterPutsTheStudent()
    {
        // An adapter with non-zero B (as `distill extract` writes), and the same change merged by hand.
        var student = Student();
        var adapter = _dir.Combine("init-adapter");
        using (var model = CausalLanguageModel.FromPretrained(student))
        {
            Modeling.Adapters.LoraAdapter.Attach(model, Modeling.Adapters.LoraConfig.For(4, 8, "q_proj", "v_proj"), seed: 3);
            using var generator = new Generator(4);
            using (no_grad())
            {
                foreach (var (_, projection) in Modeling.Adapters.LoraAdapter.Adapted(model))
                    projection.Lora!.B.weight!.normal_(0, 0.2, generator);
            }

            Modeling.Adapters.LoraAdapter.Save(model, Modeling.Adapters.LoraConfig.For(4, 8, "q_proj", "v_proj"), adapter);
        }

        using (var merged = CausalLanguageModel.FromPretrained(student))
        using (var file = Modeling.Checkpoints.SafetensorsFile.Open(Path.Combine(adapter, "adapter_model.safetensors")))
        using (no_grad())
        {
            foreach (var (path, projection) in Modeling.Adapters.LoraTargets.Linears(merged).Where(l => file.Contains($"base_model.model.{l.Path}.lora_A.weight")))
                projection.Weight.add_(file.ReadTensor($"base_model.model.{path}.lora_B.weight").matmul(file.ReadTensor($"base_model.model.{path}.lora_A.weight")) * 2.0);
            TinyModels.SaveWithByteTokenizer(merged, _dir.Combine("merged-student"));
        }

        var fromAdapter = Config("from-adapter", steps: 2);
        fromAdapter.Student.Lora = new LoraSettings { InitFrom = adapter };
        var onMerged = Config("on-merged", steps: 2);
        onMerged.Student = new StudentConfig { Model = _dir.Combine("merged-student"), Lora = new LoraSettings { R = 4, Alpha = 8 } };
        var fresh = Config("fresh", steps: 2);
        fresh.Student.Lora = new LoraSettings { R = 4, Alpha = 8 };

        var result = await KdRecipe.RunAsync(fromAdapter, RerunPolicy.Resume, null, default);
        await KdRecipe.RunAsync(onMerged, RerunPolicy.Resume, null, default);
        await KdRecipe.RunAsync(fresh, RerunPolicy.Resume, null, default);

        double FirstLoss(TrainConfig c) => System.Text.Json.JsonDocument.Parse(File.ReadLines(Path.Combine(c.OutputDir, "metrics.jsonl")).First()).RootElement.GetProperty("loss").GetDouble();
        // Step 1's loss is taken before any update: the adapter's starting point is the merged student's.
        Assert.Equal(FirstLoss(onMerged), FirstLoss(fromAdapter), 4);
        Assert.True(Math.Abs(FirstLoss(fresh) - FirstLoss(fromAdapter)) > 1e-3, $"fresh {FirstLoss(fresh)} vs from adapter {FirstLoss(fromAdapter)}");
        Assert.Equal(4, Modeling.Adapters.LoraAdapter.ReadConfig(result.AdapterPath!).R);

        var missing = Config("missing", steps: 1);
        missing.Student.Lora = new LoraSettings { InitFrom = _dir.Combine("no-adapter") };
        Assert.Contains("student.lora.init_from", (await Assert.ThrowsAsync<ConfigException>(() => KdRecipe.RunAsync(missing, RerunPolicy.Resume, null, default))).Message);
    }

    private sealed class StopAfter(int steps, CancellationTokenSource cancel) : IProgress<TrainEvent>
    {
        public void Report(TrainEvent value)
        {
            if (value.Step >= steps)
                cancel.Cancel();
        }
    }

    [Fact]
    public async Task Kd_TeacherWithAnotherTokenizer_IsRefusedBeforeStepOne()
    {
        var config = Config("mismatch");
        var other = _dir.Combine("other-teacher");
        using (var model = TinyModels.Create("llama", 3))
            model.SavePretrained(other);
        foreach (var file in Directory.GetFiles(SharedData.PathOf("tokenizers", "tiny", "qwen2-style"), "tiny_bpe_tokenizer.json"))
            File.Copy(file, Path.Combine(other, "tokenizer.json"));
        config.Teachers = [new TeacherConfig { Model = other }];

        var error = await Assert.ThrowsAsync<IncompatibleTeacherException>(() => KdRecipe.RunAsync(config, RerunPolicy.Resume, null, default));

        Assert.Contains("teacher and student tokenizers differ", error.Message);
        Assert.False(File.Exists(Path.Combine(config.OutputDir, "metrics.jsonl")));
    }

    [Fact]
    public async Task Kd_WithPacking_Runs()
    {
        var config = Config("packed", steps: 3);
        config.Dataset.Packing = true;

        var result = await KdRecipe.RunAsync(config, RerunPolicy.Resume, null, default);

        Assert.True(result.Completed);
        Assert.All(Losses(config), l => Assert.True(double.IsFinite(l)));
    }

    [Fact]
    public async Task Kd_SoftCappedStudent_TakesThePlainLossWhenChunkedIsAsked()
    {
        // Gemma 2 caps its logits at final_logit_softcapping; the chunked loss projects hidden·Wᵀ
        // without the cap, so such a student must get exactly the plain loss's numbers.
        var studentConfig = TinyModels.Config("gemma2");
        studentConfig.NumHiddenLayers = 1;
        using (var model = TinyModels.Create("gemma2", 2, config: studentConfig))
            TinyModels.SaveWithByteTokenizer(model, _dir.Combine("student-gemma2"));
        var teacher = Teacher("gemma2", 3);
        var losses = new List<List<double>>();
        var notes = new List<List<string>>();
        foreach (var chunked in new[] { true, false })
        {
            var config = Config($"gemma2-chunked-{chunked}", steps: 2);
            config.Student = new StudentConfig { Model = _dir.Combine("student-gemma2") };
            config.Teachers = [new TeacherConfig { Model = teacher }];
            config.Loss.Chunked = chunked;
            var events = new List<TrainEvent>();
            Assert.True((await KdRecipe.RunAsync(config, RerunPolicy.Resume, new Collect(events), default)).Completed);
            losses.Add(Losses(config));
            notes.Add(events.Where(e => e.Step == 0).Select(e => e.Message!).ToList());
        }

        Assert.All(losses[0], l => Assert.True(double.IsFinite(l)));
        Assert.Equal(losses[1], losses[0]);
        // The user asked for the chunked loss and is told it is not what runs.
        Assert.Contains(notes[0], n => n.StartsWith("loss.chunked: the student soft-caps", StringComparison.Ordinal));
        Assert.Empty(notes[1]);
    }

    [Fact]
    public async Task Kd_TeacherWithPaddedVocabulary_IsAccepted()
    {
        var config = Config("padded", steps: 2);
        config.Teachers = [new TeacherConfig { Model = Teacher(edit: c => c.VocabSize = 300) }];

        var result = await KdRecipe.RunAsync(config, RerunPolicy.Resume, null, default);

        Assert.True(result.Completed);
    }

    [Fact]
    public async Task Mixture_IsTheWeightedAverageOfTheTeachersDistributions()
    {
        using var a = InProcessTeacher.Load(Teacher("llama", 11));
        using var b = InProcessTeacher.Load(Teacher("llama", 12));
        using var mixture = new MixtureTeacher([a, b], [3, 1]);
        var ids = TinyModels.RandomIds(1, 5, 262, seed: 13);
        using var batch = new Training.Datasets.Batch(ids, ids.clone(), torch.ones_like(ids));
        var request = new SignalRequest(SignalFormat.Dense, 262, Temperature: 2);

        using var mixedRows = await mixture.ScoreAsync(batch, request);
        var mixed = ((DenseTeacherLogits)mixedRows.Block(0, 4)).Logits;
        var pa = ((DenseTeacherLogits)a.Score(batch, request).Block(0, 4)).Logits.div(2).softmax(-1);
        var pb = ((DenseTeacherLogits)b.Score(batch, request).Block(0, 4)).Logits.div(2).softmax(-1);

        TensorAssert.Close(0.75 * pa + 0.25 * pb, (mixed / 2).softmax(-1), atol: 1e-6);
    }

    [Fact]
    public async Task Gkd_WithLmbdaZero_IsExactlyKd_AndWithLmbdaOneGoesOnPolicy()
    {
        var kd = Config("as-kd", steps: 4);
        var offPolicy = Config("gkd-0", steps: 4);
        offPolicy.Recipe = "gkd";
        offPolicy.Gkd = new GkdSettings { Lmbda = 0 };
        var onPolicy = Config("gkd-1", steps: 3);
        onPolicy.Recipe = "gkd";
        onPolicy.Gkd = new GkdSettings { Lmbda = 1 };
        onPolicy.Loss = new LossConfig { Kind = "jsd", Beta = 0.5, KdRatio = 1 };
        onPolicy.Generation = new GenerationSettings { MaxNewTokens = 6, Temperature = 1.0 };

        await KdRecipe.RunAsync(kd, RerunPolicy.Resume, null, default);
        await GkdRecipe.RunAsync(offPolicy, RerunPolicy.Resume, null, default);
        var events = new List<TrainEvent>();
        var result = await GkdRecipe.RunAsync(onPolicy, RerunPolicy.Resume, new Collect(events), default);

        Assert.Equal(Losses(kd), Losses(offPolicy));
        Assert.True(result.Completed);
        // Three steps, each fully on-policy, then the final evaluation (as every recipe reports it).
        Assert.Equal([.. Enumerable.Repeat("2/2 micro-batches on-policy", 3), "final evaluation"], events.Select(e => e.Message));
        Assert.All(Losses(onPolicy), l => Assert.True(double.IsFinite(l)));
    }

    [Fact]
    public async Task SeqKd_TrainsOnTheTeachersGreedyCompletions()
    {
        var config = Config("seq-kd", steps: 3);
        config.Recipe = "seq_kd";
        config.Generation = new GenerationSettings { Greedy = true, MaxNewTokens = 5 };

        var result = await SeqKdRecipe.RunAsync(config, RerunPolicy.Resume, null, default);

        Assert.True(result.Completed);
        var line = File.ReadLines(Path.Combine(config.OutputDir, "seq_kd_train.jsonl")).First();
        var first = SeqKdSample.Read(line, "seq_kd_train.jsonl", 1);
        using var teacher = CausalLanguageModel.FromPretrained(config.Teachers[0].Model);
        // The file is for people too: the prompt and the response as text, in snake_case keys.
        var text = System.Text.Json.Nodes.JsonNode.Parse(line)!;
        var tokenizer = Modeling.Tokenization.TokenizerLoader.Load(config.Teachers[0].Model);
        Assert.Equal(tokenizer.Decode(first.InputIds.Take(first.PromptLength)), (string)text["prompt"]!);
        Assert.Equal(tokenizer.Decode(first.InputIds.Skip(first.PromptLength)), (string)text["response"]!);
        Assert.NotNull(text["input_ids"]);
        Assert.Null(text["InputIds"]);
        var prompt = first.InputIds.Take(first.PromptLength).ToArray();
        var stop = Modeling.Generation.GenerationConfig.Load(config.Teachers[0].Model).StopTokens(teacher.Config);
        var expected = Modeling.Generation.TextGenerator.Generate(teacher, [prompt], new Modeling.Generation.GenerationOptions { Greedy = true, MaxNewTokens = 5, StopTokenIds = stop })[0];
        Assert.Equal(expected.Tokens, first.InputIds.Skip(prompt.Length));
        Assert.Equal(expected.Tokens.Select(t => (long)t), first.Labels.Skip(prompt.Length));
    }

    [Theory]
    [InlineData("{")]
    [InlineData("{\"prompt\": \"a\", \"response\": \"b\", \"input_ids\": [1, 2], \"labels\": [1]}")]
    [InlineData("{\"prompt\": \"a\"}")]
    public void SeqKd_ADamagedSampleFile_IsNamedWithItsLine(string line)
    {
        var e = Assert.Throws<Training.Datasets.DatasetFormatException>(() => SeqKdSample.Read(line, "run/seq_kd_train.jsonl", 7));
        Assert.StartsWith("run/seq_kd_train.jsonl:7: not a seq_kd sample", e.Message);
    }

    [Fact]
    public void SeqKd_SampleFilesOfEarlierRuns_StillRead()
    {
        var example = SeqKdSample.Read("{\"InputIds\":[5,6,7],\"Labels\":[-100,6,7],\"DocumentIds\":null}", "f", 1);
        Assert.Equal([5, 6, 7], example.InputIds);
        Assert.Equal([-100L, 6, 7], example.Labels);
    }

    private static List<double> Losses(TrainConfig config) =>
        File.ReadAllLines(Path.Combine(config.OutputDir, "metrics.jsonl")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToList();

    private sealed class Collect(List<TrainEvent> events) : IProgress<TrainEvent>
    {
        public void Report(TrainEvent value) => events.Add(value);
    }

    public void Dispose() => _dir.Dispose();
}
