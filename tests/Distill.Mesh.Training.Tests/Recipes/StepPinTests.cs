using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Training.Tests.Recipes;

/// <summary>
/// Regression pins for the KD training step: the losses and gradient norms of three steps of a
/// seeded tiny run (dense teacher, chunked loss, AdamW with weight decay, clipping, accumulation 2),
/// recorded from the step code as it was before the speed work of issue 16. Step 1 pins the forward
/// passes, the loss and the gradients; steps 2 and 3 also pin the optimizer's updates. Any change to
/// the step's maths moves these numbers; reordered float arithmetic moves them only within the
/// stated tolerances: relative 1e-5 in float32; in bfloat16, whose 8-bit mantissa rounds
/// differently when operations are fused or reordered, 2e-3 for the losses (computed in float32
/// from bf16 logits) and 1e-2 for the gradient norm (a bf16 value: one rounding step is 2⁻⁷ ≈ 0.8%).
/// </summary>
[Collection(nameof(GlobalRandomState))]
public sealed class StepPinTests : IDisposable
{
    private readonly TempFolder _dir = new();

    private sealed class Collect(List<TrainEvent> events) : IProgress<TrainEvent>
    {
        public void Report(TrainEvent value) => events.Add(value);
    }

    private TrainConfig Config(string name, string dtype, bool lora)
    {
        var teacher = TinyModels.Config("llama");
        using var teacherModel = TinyModels.Create("llama", 1, config: teacher);
        var student = TinyModels.Config("qwen2");
        student.NumHiddenLayers = 1;
        using var studentModel = TinyModels.Create("qwen2", 2, config: student);
        var data = _dir.Combine($"{name}.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 16).Select(i => $"{{\"prompt\": \"Q{i % 5}: {i} times {i % 3}?\", \"completion\": \" {i * (i % 3)}\"}}"));
        return new TrainConfig
        {
            Recipe = "kd",
            Seed = 11,
            OutputDir = _dir.Combine($"{name}-run"),
            Student = new StudentConfig
            {
                Model = TinyModels.SaveWithByteTokenizer(studentModel, _dir.Combine($"{name}-student")),
                Dtype = dtype,
                Lora = lora ? new LoraSettings { R = 4, Alpha = 8, TargetModules = ["all-linear"] } : null,
            },
            Teachers = [new TeacherConfig { Model = TinyModels.SaveWithByteTokenizer(teacherModel, _dir.Combine($"{name}-teacher")), Dtype = dtype }],
            Loss = new LossConfig { Kind = "fkl", KdRatio = 0.7, Temperature = 2, T2 = true },
            Dataset = new DatasetConfig { Path = data, MaxLength = 32, EvalFraction = 0 },
            Training = new TrainingConfig
            {
                MaxSteps = 3,
                BatchSize = 4,
                GradientAccumulation = 2,
                MaxGradNorm = 0.5,
                Optimizer = new OptimizerConfig { Lr = 2e-2, WeightDecay = 0.1 },
                Scheduler = new SchedulerConfig { Name = "constant" },
            },
        };
    }

    private async Task<List<TrainEvent>> Run(string name, string dtype, bool lora)
    {
        var events = new List<TrainEvent>();
        await KdRecipe.RunAsync(Config(name, dtype, lora), RerunPolicy.Restart, new Collect(events), default);
        return events;
    }

    [Theory]
    [InlineData("float32", false, 1e-5, 1e-5, 2.199155330657959, 2.750112533569336, 1.6125927567481995, 1.1329777836799622)]
    [InlineData("bfloat16", false, 2e-3, 1e-2, 2.200051784515381, 2.75, 1.6156985759735107, 1.128413826227188)]
    [InlineData("float32", true, 1e-5, 1e-5, 2.199155330657959, 0.4544476568698883, 1.9627565145492554, 1.5559346079826355)]
    public async Task KdSteps_SeededTinyRun_MatchTheRecordedLossesAndGradientNorms(string dtype, bool lora, double tolerance, double normTolerance,
        double loss1, double gradNorm1, double loss2, double loss3)
    {
        var events = await Run($"{dtype}-{lora}", dtype, lora);

        Assert.Equal(3, events.Count);
        var pins = new[]
        {
            ("step 1 loss", loss1, events[0].Loss, tolerance),
            ("step 1 gradient norm", gradNorm1, events[0].GradNorm, normTolerance),
            ("step 2 loss", loss2, events[1].Loss, tolerance),
            ("step 3 loss", loss3, events[2].Loss, tolerance),
        };
        var off = pins.Where(p => !(Math.Abs(p.Item3 - p.Item2) <= p.Item4 * Math.Abs(p.Item2)))
            .Select(p => $"{p.Item1}: expected {p.Item2:R}, got {p.Item3:R} (relative tolerance {p.Item4})").ToList();
        Assert.True(off.Count == 0, string.Join("; ", off));
    }

    public void Dispose() => _dir.Dispose();
}
