using System.Diagnostics;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Evaluation;
using Distill.Mesh.Training.Teachers;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// The optimizer-step loop the recipes share: resume → per step, micro-batches scored by the
/// teacher (if any) and learned with (1 − kd_ratio)·CE + kd_ratio·KD normalised over the step's
/// trained tokens → clip, step, event, periodic evaluation → checkpoint on cancellation and at
/// the end → final evaluation. Without a teacher the loss is plain cross-entropy.
/// </summary>
internal static class TrainingLoop
{
    /// <summary>One optimizer step's micro-batches, and a note for the step's event.</summary>
    public delegate (List<Batch> Batches, string? Message) StepBatches(IDataOrder order, long step);

    /// <param name="run">The started run with its data loaded.</param>
    /// <param name="teacher">The teacher signal, or null for fine-tuning on hard labels.</param>
    /// <param name="vocabulary">The ids student and teacher share (the student's vocabulary without a teacher).</param>
    /// <param name="denseTeacher">Whether evaluation may ask the teacher for dense rows (false for remote teachers).</param>
    /// <param name="stepBatches">Where a step's micro-batches come from; null: the data order's next ones.</param>
    /// <param name="progress">Receives step events.</param>
    /// <param name="cancellationToken">Stops the run at the next step boundary, with a checkpoint.</param>
    public static async Task<TrainResult> RunAsync(RecipeRun run, ITeacherSignal? teacher, int vocabulary, bool denseTeacher, StepBatches? stepBatches,
        IProgress<TrainEvent>? progress, CancellationToken cancellationToken)
    {
        var config = run.Config;
        Modeling.Runtime.NativeHeap.KeepFreedMemory();
        var order = run.Order;
        stepBatches ??= (o, step) => (run.MicroBatches(o, step), null);
        var totalSteps = run.TotalSteps();
        using var optimizer = TrainingFactory.Optimizer(config.Training.Optimizer, run.Student.named_parameters().Select(p => (p.name, p.parameter)));
        var schedule = TrainingFactory.Schedule(config.Training.Scheduler, config.Training.Optimizer.Lr, totalSteps);
        var trainingStep = new TrainingStep(config, run.Student, teacher, vocabulary, optimizer);
        if (config.Loss.Chunked && !trainingStep.Chunked)
            progress?.Report(TrainEvent.Note("loss.chunked: the student soft-caps its final logits, which the chunked loss does not apply; the plain loss is used (the same values, with the full logits in memory)"));
        var resumed = TrainingCheckpoint.TryResume(config.OutputDir, run.Student, optimizer);
        var history = resumed?.History ?? [];
        var step = resumed?.Step ?? 0;
        if (step > totalSteps)
            throw new ConfigException($"the run's checkpoint is at step {step}, beyond the {totalSteps} steps this config asks for (training.max_steps / epochs); a resumed run can run longer, not shorter");
        order.Restore(resumed?.DataState, step * Math.Max(1, config.Training.GradientAccumulation));
        // Steps logged after the checkpoint (a run killed between checkpoints) are trained again: the loggers start from the history, so each is logged once.
        using var metrics = Metrics.MetricLoggers.For(config);
        metrics.Start(history, Specs.Configuration.TrainConfigLoader.Normalized(config).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        if (resumed is not null && history.Count > 0)
            progress?.Report(history[^1] with { TotalSteps = totalSteps, Message = $"resumed from step {step}" });

        Task<EvalResult> Evaluate() => Evaluator.EvaluateAsync(run.Student, run.Eval, teacher, vocabulary, run.PadTokenId, cancellationToken: cancellationToken, denseTeacher: denseTeacher);

        while (step < totalSteps)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                run.Checkpoint(step, optimizer, history, metrics);
                return run.Finish(step, completed: false, history, null, metrics);
            }

            var watch = Stopwatch.StartNew();
            step++;
            // TorchSharp 0.107 cannot read or restore the CUDA generator's state, so no checkpoint can
            // carry it: on CUDA each step reseeds it from (seed, step), and a resumed run draws the
            // same dropout masks as an uninterrupted one. (The CPU generator's state is checkpointed.)
            if (run.Student.Device.type == DeviceType.CUDA)
                torch.cuda.manual_seed_all(CudaStepSeed(config.Seed, step));
            optimizer.LearningRate = schedule.At(step);
            var (batches, message) = stepBatches(order, step);
            StepResult result;
            try
            {
                result = await trainingStep.RunAsync(batches, step, timings: null, cancellationToken);
            }
            catch (TrainingDivergedException diverged)
            {
                // The weights are still the last good step's: keep them as a checkpoint to fork from.
                var latest = TrainingCheckpoint.Latest(config.OutputDir);
                if (step > 1 && (latest is null || !latest.EndsWith($"{step - 1:D8}", StringComparison.Ordinal)))
                    run.Checkpoint(step - 1, optimizer, history, metrics);

                metrics.Flush(history);
                throw diverged.WithCheckpoint(TrainingCheckpoint.Latest(config.OutputDir));
            }
            finally
            {
                foreach (var batch in batches)
                    batch.Dispose();
            }

            var stepTime = watch.Elapsed;
            var e = new TrainEvent(step, totalSteps, result.Loss, result.Kd, result.Ce, optimizer.LearningRate, result.GradNorm, result.Tokens / stepTime.TotalSeconds, result.Tokens,
                run.EvalDue(step, totalSteps) ? await Evaluate() : null, message, stepTime.TotalSeconds, result.TeacherWait.TotalSeconds);
            run.Record(e, history, progress, optimizer, metrics);
        }

        // Outputs (a last checkpoint lets a rerun with more steps continue from here)
        if (resumed?.Step != step)
            run.Checkpoint(step, optimizer, history, metrics);
        var final = run.Eval.Count > 0 ? await Evaluate() : null;
        if (final is not null && history.Count > 0)
            progress?.Report(history[^1] with { Eval = final, Message = "final evaluation" });
        return run.Finish(step, completed: true, history, final, metrics);
    }

    /// <summary>The CUDA generator's seed for step <paramref name="step"/> (a pure function: resume-exact without saved state).</summary>
    internal static long CudaStepSeed(int seed, long step) => unchecked(seed * 2_147_483_647L + step * 1_000_000_007L) & long.MaxValue;

    /// <summary>The seed of micro-batch <paramref name="index"/>'s teacher signal (sampled signals draw from it; a resumed run draws the same).</summary>
    internal static long SignalSeed(TrainConfig config, long index) => config.Seed * 1_000_003L + index;
}
