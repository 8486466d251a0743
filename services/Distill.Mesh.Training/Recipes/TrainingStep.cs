using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Optimization;
using Distill.Mesh.Training.Teachers;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Recipes;

/// <summary>What one optimizer step measured: loss parts summed over its micro-batches, the gradient norm, its trained tokens.</summary>
public sealed record StepResult(double Loss, double Kd, double Ce, double GradNorm, long Tokens, TimeSpan TeacherWait);

/// <summary>
/// One optimizer step of the shared loop: per micro-batch the teacher's rows (if any), the
/// student's hidden states, the (chunked) loss normalised over the step's trained tokens and its
/// backward; then clipping and the update. <see cref="TrainingLoop"/> runs it for the recipes, and
/// `distill bench train` runs this same code with <see cref="StepTimings"/> to time its phases.
/// </summary>
public sealed class TrainingStep
{
    private readonly TrainConfig _config;
    private readonly CausalLanguageModel _student;
    private readonly ITeacherSignal? _teacher;
    private readonly int _vocabulary;
    private readonly TrainingOptimizer _optimizer;
    private readonly DistillationLossOptions _lossOptions;

    /// <param name="config">The run (loss, signal, accumulation, clipping, seed).</param>
    /// <param name="student">The student, in training mode.</param>
    /// <param name="teacher">The teacher signal, or null for fine-tuning on hard labels.</param>
    /// <param name="vocabulary">The ids student and teacher share.</param>
    /// <param name="optimizer">The optimizer over the student's trainable parameters.</param>
    public TrainingStep(TrainConfig config, CausalLanguageModel student, ITeacherSignal? teacher, int vocabulary, TrainingOptimizer optimizer)
    {
        _lossOptions = TrainingFactory.Loss(config.Loss);
        if (config.Loss.Chunked && student.LmHead?.Lora is not null)
            throw new ConfigException("loss.chunked uses the output weight directly; it cannot train a LoRA on lm_head (set loss.chunked=false)");
        (_config, _student, _teacher, _vocabulary, _optimizer) = (config, student, teacher, vocabulary, optimizer);
    }

    /// <summary>
    /// Whether the loss is the chunked one: asked for, and the student has no final-logit
    /// soft-capping (Gemma 2's), which the chunked loss, projecting hidden·Wᵀ itself, does not apply.
    /// </summary>
    public bool Chunked => _config.Loss.Chunked && _student.Config.FinalLogitSoftcap is null;

    /// <summary>Learns from step <paramref name="step"/>'s micro-batches (1-based step; the batches stay the caller's).</summary>
    /// <param name="batches">The step's micro-batches, on the student's device.</param>
    /// <param name="step">The step about to be taken (seeds the teacher's sampled signal).</param>
    /// <param name="timings">Receives the time of each phase, or null to measure nothing.</param>
    /// <param name="cancellationToken">Cancels waiting for the teacher.</param>
    /// <exception cref="TrainingDivergedException">The step's loss or gradients are NaN or infinite (nothing was applied).</exception>
    public async Task<StepResult> RunAsync(IReadOnlyList<Batch> batches, long step, StepTimings? timings, CancellationToken cancellationToken)
    {
        var accumulation = Math.Max(1, _config.Training.GradientAccumulation);
        var device = _student.Device;
        var stepTokens = batches.Sum(b => b.TrainedTokens);
        double loss = 0, kd = 0, ce = 0;
        var teacherWait = TimeSpan.Zero;
        var clock = new StepTimings.Clock(timings, device);
        for (var m = 0; m < batches.Count; m++)
        {
            // The teacher is awaited before the dispose scope opens: scopes are thread-static.
            var request = TrainingFactory.Signal(_config.Signal, _vocabulary, _config.Loss.Temperature, TrainingLoop.SignalSeed(_config, (step - 1) * accumulation + m));
            var asked = System.Diagnostics.Stopwatch.GetTimestamp();
            using var teacherRows = _teacher is null ? null : Timed(new DeviceRows(await _teacher.ScoreAsync(batches[m], request, cancellationToken), device), timings, device);
            teacherWait += System.Diagnostics.Stopwatch.GetElapsedTime(asked);
            clock.Lap(StepPhase.TeacherForward);
            using var scope = torch.NewDisposeScope();
            var batch = batches[m];
            var (hidden, labels) = Shifted(_student.Hidden(batch.InputIds, batch.AttentionMask, batch.PositionIds, null, batch.DocumentIds), batch.Labels);
            clock.Lap(StepPhase.StudentForward);
            using var parts = Chunked
                ? ChunkedDistillationLoss.Compute(hidden, _student.OutputWeight.narrow(0, 0, _vocabulary), teacherRows, labels, _lossOptions, stepTokens)
                : DistillationLoss.Compute(_student.Logits(hidden).narrow(-1, 0, _vocabulary), teacherRows?.Block(0, teacherRows.Rows), labels, _lossOptions, stepTokens);
            clock.Lap(StepPhase.Loss);
            parts.Total.backward();
            loss += parts.Total.to_type(ScalarType.Float64).item<double>();
            kd += parts.Kd.to_type(ScalarType.Float64).item<double>();
            ce += parts.Ce.to_type(ScalarType.Float64).item<double>();
            clock.Lap(StepPhase.Backward);
        }

        var gradNorm = ClipAndStep(_optimizer, _config.Training.MaxGradNorm, step, loss);
        clock.Lap(StepPhase.Optimizer);
        return new StepResult(loss, kd, ce, gradNorm, stepTokens, teacherWait);
    }

    /// <summary>
    /// Clips the gradient norm (when <paramref name="maxGradNorm"/> &gt; 0), steps the optimizer and
    /// clears the gradients; returns the norm (measured also when clipping is off). A non-finite loss
    /// or gradient norm applies nothing: the weights stay those of the previous step.
    /// </summary>
    /// <exception cref="TrainingDivergedException">The step's loss or gradients are NaN or infinite.</exception>
    public static double ClipAndStep(TrainingOptimizer optimizer, double maxGradNorm, long step, double loss)
    {
        var norm = nn.utils.clip_grad_norm_(optimizer.Parameters.Select(p => p.Parameter), maxGradNorm > 0 ? maxGradNorm : double.PositiveInfinity);
        if (!double.IsFinite(loss) || !double.IsFinite(norm))
        {
            optimizer.ZeroGrad();
            throw new TrainingDivergedException(step, loss, norm);
        }

        optimizer.Step();
        optimizer.ZeroGrad();
        return norm;
    }

    /// <summary>Position t predicts token t + 1: hidden states of positions 0..T−2 against labels 1..T−1, flattened.</summary>
    internal static (Tensor Hidden, Tensor Labels) Shifted(Tensor hidden, Tensor labels)
    {
        var length = hidden.shape[1];
        return (hidden.narrow(1, 0, length - 1).reshape(-1, hidden.shape[^1]), labels.narrow(1, 1, length - 1).reshape(-1));
    }

    /// <summary>The teacher's rows, with the blocks the loss asks for booked to the teacher's forward when timing.</summary>
    private static ITeacherRows Timed(ITeacherRows rows, StepTimings? timings, Device device) => timings is null ? rows : new TimedTeacherRows(rows, timings, device);

    /// <summary>The teacher's output projection runs inside the loss, one block at a time: its time is the teacher's, not the loss's.</summary>
    private sealed class TimedTeacherRows(ITeacherRows rows, StepTimings timings, Device device) : ITeacherRows
    {
        public long Rows => rows.Rows;

        public TeacherTarget Block(long start, long length)
        {
            var clock = new StepTimings.Clock(timings, device);
            var block = rows.Block(start, length);
            timings.Add(StepPhase.Loss, -clock.Lap(StepPhase.TeacherForward));
            return block;
        }

        public void Dispose() => rows.Dispose();
    }
}
