using System.CommandLine;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Runtime;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Recipes;
using Distill.Mesh.Training.Teachers;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill bench train --config C.json</c>: KD training steps (dense teacher, chunked loss,
/// AdamW), full fine-tuning and LoRA, with the step's time split by phase, next to the matmul
/// FLOP/s measured in the same run. The steps are the training loop's own
/// (<see cref="TrainingStep"/>), on random weights and random tokens.
/// </summary>
internal static class TrainBenchCommand
{
    private static readonly StepPhase[] Phases = Enum.GetValues<StepPhase>();

    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "HF config.json of the student (random weights)", Required = true };
        var teacher = new Option<string?>("--teacher") { Description = "HF config.json of the teacher (default: the student's)" };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 4 };
        var sequence = new Option<int>("--seq") { DefaultValueFactory = _ => 256 };
        var steps = new Option<int>("--steps") { Description = "timed steps per case, after one warm-up step (medians are shown)", DefaultValueFactory = _ => 3 };
        var dtypes = new Option<string>("--dtypes") { DefaultValueFactory = _ => "float32,bfloat16" };
        var lora = new Option<int>("--lora") { Description = "LoRA rank on all linear layers for the LoRA rows (0: full fine-tuning only)", DefaultValueFactory = _ => 16 };
        var threads = new Option<int>("--threads") { Description = "torch intra-op threads (default: torch's choice)" };
        var heap = new Option<string>("--native-heap") { Description = "keep: freed native memory is kept for reuse (what training does); release: glibc's default", DefaultValueFactory = _ => "keep" };
        heap.AcceptOnlyFromAmong("keep", "release");
        var command = new Command("train", "KD training-step time by phase vs. measured matmul peak, full fine-tuning and LoRA") { config, teacher, batch, sequence, steps, dtypes, lora, threads, heap };
        command.SetAction((parse, output) =>
        {
            if (parse.GetValue(threads) is > 0 and var n)
                torch.set_num_threads(n);
            var kept = parse.GetValue(heap) == "keep" && NativeHeap.KeepFreedMemory();
            var student = ModelConfigs.Load(parse.GetValue(config)!);
            var teacherConfig = parse.GetValue(teacher) is { } teacherPath ? ModelConfigs.Load(teacherPath) : student;
            var shape = new Shape(parse.GetValue(batch), parse.GetValue(sequence), parse.GetValue(steps), parse.GetValue(lora));
            shape.Validate(student, teacherConfig);
            output.WriteLine($"student {Describe(student)}; teacher {Describe(teacherConfig)}; batch {shape.Batch} × seq {shape.Length}; dense teacher signal, chunked fkl loss, AdamW; {torch.get_num_threads()} threads; median of {shape.Steps} steps after a warm-up; native heap: {(kept ? "freed memory kept for reuse" : "glibc's default (freed blocks above the mmap threshold go back to the kernel)")}");
            output.WriteLine("| dtype | mode | matmul GFLOP/s | step s | data | teacher fwd | student fwd | loss | backward | optimizer | tokens/s | GFLOP/token | achieved GFLOP/s | share of peak | time per FLOP vs full | page faults/step |");
            output.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            var tokenizer = ByteTokenizer();
            foreach (var name in parse.GetValue(dtypes)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var dtype = CommandRunner.ParseDType(name);
                var peak = BenchCommand.MatmulGflops(dtype);
                using var teacherModel = new CausalLanguageModel(teacherConfig, dtype);
                teacherModel.InitializeWeights(2);
                using var signal = new InProcessTeacher(teacherModel, tokenizer, "bench");
                var teacherFlops = BenchCommand.ForwardFlopsPerToken(teacherModel, shape.Length);
                double? fullSecondsPerFlop = null;
                foreach (var rank in shape.LoraRank > 0 ? new[] { 0, shape.LoraRank } : [0])
                {
                    var m = Measure(student, signal, dtype, shape, rank, teacherFlops);
                    var secondsPerFlop = m.StepSeconds / (m.FlopsPerToken * m.Tokens);
                    fullSecondsPerFlop ??= secondsPerFlop;
                    var achieved = m.FlopsPerToken * m.Tokens / m.StepSeconds / 1e9;
                    var phases = string.Join(" | ", Phases.Select(p => $"{m.Phases[p]:F2}"));
                    output.WriteLine($"| {name} | {(rank == 0 ? "full" : $"LoRA r{rank}")} | {peak:F1} | {m.StepSeconds:F2} | {phases} | {m.Tokens / m.StepSeconds:F1} | {m.FlopsPerToken / 1e9:G4} | {achieved:F1} | {achieved / peak:P1} | {secondsPerFlop / fullSecondsPerFlop:F2}× | {m.PageFaults:N0} |");
                }
            }

            output.WriteLine("phases in seconds (medians; the step is the median total). The teacher's output projection, computed block by block inside the chunked loss, is booked to 'teacher fwd'; the chunked loss computes the output head's gradients, so 'loss' holds that part of the backward.");
            output.WriteLine("GFLOP/token = teacher forward + student forward + backward: full = F_T + 3·F_S (input and weight gradients); LoRA = F_T + 2·F_S (input gradients through the frozen weights) + 3× the adapters' forward. F = 2 × matmul parameters (incl. the output head) + 2 × layers × seq × attention width; backward attention counts twice its forward.");
            return 0;
        });
        return command;
    }

    /// <summary>The teacher needs a tokenizer to exist; the steps never use it: the project's byte-level one, read from a scratch folder.</summary>
    private static TextTokenizer ByteTokenizer()
    {
        var folder = Directory.CreateTempSubdirectory("distill-bench-");
        try
        {
            ByteTokenizerBuilder.Write(folder.FullName);
            return TokenizerLoader.Load(folder.FullName);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    private static string Describe(DecoderConfig c) => $"{c.ModelType} {c.NumHiddenLayers}×{c.HiddenSize} vocab {c.VocabSize}";

    private sealed record Shape(int Batch, int Length, int Steps, int LoraRank)
    {
        public void Validate(DecoderConfig student, DecoderConfig teacher)
        {
            if (Batch < 1)
                throw new ArgumentException($"--batch must be ≥ 1 (got {Batch})");
            if (Length < 2 || Length > Math.Min(student.MaxPositionEmbeddings, teacher.MaxPositionEmbeddings))
                throw new ArgumentException($"--seq must be in [2, {Math.Min(student.MaxPositionEmbeddings, teacher.MaxPositionEmbeddings)}] (the models' max_position_embeddings; got {Length})");
            if (Steps < 1)
                throw new ArgumentException($"--steps must be ≥ 1 (got {Steps})");
            if (LoraRank < 0)
                throw new ArgumentException($"--lora must be ≥ 0 (got {LoraRank})");
        }
    }

    private sealed record Measurement(double StepSeconds, IReadOnlyDictionary<StepPhase, double> Phases, long Tokens, double FlopsPerToken, double PageFaults);

    /// <summary>One warm-up step (kernel choice, optimizer state), then the timed steps of one case.</summary>
    private static Measurement Measure(DecoderConfig studentConfig, InProcessTeacher teacher, ScalarType dtype, Shape shape, int loraRank, double teacherFlops)
    {
        using var student = new CausalLanguageModel(studentConfig, dtype);
        student.InitializeWeights(1);
        if (loraRank > 0)
            LoraAdapter.Attach(student, LoraConfig.For(loraRank, 2 * loraRank, "all-linear"), seed: 3);
        student.train();
        var vocabulary = (int)Math.Min(studentConfig.VocabSize, teacher.Model.Config.VocabSize);
        var run = new TrainConfig
        {
            Recipe = "kd",
            Training = new TrainingConfig { BatchSize = shape.Batch, Optimizer = new OptimizerConfig { Lr = 1e-5 } },
        };
        using var optimizer = TrainingFactory.Optimizer(run.Training.Optimizer, student.named_parameters().Select(p => (p.name, p.parameter)));
        var step = new TrainingStep(run, student, teacher, vocabulary, optimizer);
        var examples = RandomExamples(shape, vocabulary);
        var measured = new List<StepTimings>();
        var faults = new List<double>();
        for (var i = 0; i <= shape.Steps; i++)
        {
            var before = MinorFaults();
            var timings = new StepTimings();
            var batch = StepTimings.Time(timings, student.Device, StepPhase.Data, () => Batching.Collate(examples, RecipeRun.PaddingId(teacher.Tokenizer), student.Device));
            using (batch)
                step.RunAsync([batch], i + 1, timings, default).GetAwaiter().GetResult();
            if (i > 0)
            {
                measured.Add(timings);
                faults.Add(MinorFaults() - before);
            }
        }

        var studentFlops = BenchCommand.ForwardFlopsPerToken(student, shape.Length);
        var adapterFlops = 2.0 * student.named_parameters().Where(p => p.name.Contains(".lora_", StringComparison.Ordinal)).Sum(p => p.parameter.numel());
        var flops = loraRank > 0 ? teacherFlops + 2 * studentFlops + 3 * adapterFlops : teacherFlops + 3 * studentFlops;
        return new Measurement(Median(measured.Select(t => t.Total)), Phases.ToDictionary(p => p, p => Median(measured.Select(t => t[p]))), (long)shape.Batch * shape.Length, flops, Median(faults));
    }

    /// <summary>The process's minor page faults so far (field 10 of /proc/self/stat; 0 where there is none).</summary>
    private static long MinorFaults()
    {
        const string stat = "/proc/self/stat";
        if (!File.Exists(stat))
            return 0;
        var text = File.ReadAllText(stat);
        // Fields after the command name (which may hold spaces), counted from field 3.
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[10 - 3], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static List<TokenizedExample> RandomExamples(Shape shape, int vocabulary)
    {
        var random = new Random(7);
        return Enumerable.Range(0, shape.Batch).Select(_ =>
        {
            var ids = Enumerable.Range(0, shape.Length).Select(_ => random.Next(vocabulary)).ToArray();
            return new TokenizedExample(ids, ids.Select(id => (long)id).ToArray());
        }).ToList();
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : 0.5 * (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]);
    }
}
