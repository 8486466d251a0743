using System.Diagnostics;
using System.Diagnostics.Metrics;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Training.Telemetry;

/// <summary>
/// The training loop's instruments (meter <see cref="MeterName"/>): the latest loss and its parts,
/// learning rate, grad norm and throughput of each run, step and teacher-wait durations, steps and
/// checkpoints. Labels are bounded: the run (its output folder's name: the run id in the mesh),
/// the recipe and, for the loss, its part.
/// </summary>
public static class TrainingMetrics
{
    public const string MeterName = "Distill.Mesh.Training";

    private static readonly Meter Meter = new(MeterName);
    private static readonly Gauge<double> Loss = Meter.CreateGauge<double>("distill.train.loss", null, "The latest step's loss, by part (total, kd, ce)");
    private static readonly Gauge<double> LearningRate = Meter.CreateGauge<double>("distill.train.learning_rate", null, "The learning rate of the latest step");
    private static readonly Gauge<double> GradNorm = Meter.CreateGauge<double>("distill.train.grad_norm", null, "The gradient norm of the latest step, before clipping");
    private static readonly Gauge<double> Throughput = Meter.CreateGauge<double>("distill.train.throughput", "{token}/s", "Trained tokens per second of the latest step");
    private static readonly Gauge<double> TeacherWait = Meter.CreateGauge<double>("distill.train.teacher_wait.ratio", null, "Share of the latest step's time spent waiting for the teacher's signal");
    private static readonly Gauge<long> Step = Meter.CreateGauge<long>("distill.train.step", "{step}", "Steps done");
    private static readonly Gauge<long> TotalSteps = Meter.CreateGauge<long>("distill.train.total_steps", "{step}", "Steps the run will train in all");
    private static readonly Gauge<double> Perplexity = Meter.CreateGauge<double>("distill.train.eval.perplexity", null, "Perplexity on the eval split at the latest evaluation");
    private static readonly Counter<long> Tokens = Meter.CreateCounter<long>("distill.train.tokens", "{token}", "Trained (loss-bearing) tokens");
    private static readonly Counter<long> Checkpoints = Meter.CreateCounter<long>("distill.train.checkpoints", "{checkpoint}", "Checkpoints written");
    private static readonly Histogram<double> StepDuration = Meter.CreateHistogram<double>("distill.train.step.duration", "s", "Wall time of one optimizer step (all micro-batches, teacher included)");
    private static readonly Histogram<double> TeacherWaitDuration = Meter.CreateHistogram<double>("distill.train.teacher_wait.duration", "s", "Time one step waited for the teacher's signal");

    /// <summary>Records one finished step of run <paramref name="outputDir"/>.</summary>
    public static void RecordStep(string outputDir, string recipe, TrainEvent e)
    {
        var tags = Tags(outputDir, recipe);
        Loss.Record(e.Loss, With(tags, "part", "total"));
        Loss.Record(e.KdLoss, With(tags, "part", "kd"));
        Loss.Record(e.CeLoss, With(tags, "part", "ce"));
        LearningRate.Record(e.LearningRate, tags);
        GradNorm.Record(e.GradNorm, tags);
        Throughput.Record(e.TokensPerSecond, tags);
        Step.Record(e.Step, tags);
        TotalSteps.Record(e.TotalSteps, tags);
        Tokens.Add(e.Tokens, tags);
        if (e.StepSeconds > 0)
        {
            StepDuration.Record(e.StepSeconds, tags);
            TeacherWaitDuration.Record(e.TeacherWaitSeconds, tags);
            TeacherWait.Record(e.TeacherWaitSeconds / e.StepSeconds, tags);
        }

        if (e.Eval is { } eval)
            Perplexity.Record(eval.Perplexity, tags);
    }

    /// <summary>Counts a checkpoint written for run <paramref name="outputDir"/>.</summary>
    public static void RecordCheckpoint(string outputDir) => Checkpoints.Add(1, new TagList { { "run", RunLabel(outputDir) } });

    /// <summary>The run label: the output folder's name (the run id under the trainer service).</summary>
    public static string RunLabel(string outputDir) => Path.GetFileName(Path.TrimEndingDirectorySeparator(outputDir));

    private static TagList Tags(string outputDir, string recipe) => new() { { "run", RunLabel(outputDir) }, { "recipe", recipe } };

    private static TagList With(TagList tags, string key, string value)
    {
        var copy = tags;
        copy.Add(key, value);
        return copy;
    }
}
