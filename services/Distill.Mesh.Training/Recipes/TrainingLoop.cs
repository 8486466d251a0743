using System.Diagnostics;
using Distill.Mesh.Modeling.Losses;
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
    public delegate (List<Batch> Batches, string? Message) StepBatches(DataOrder order, long step);

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
        var lossOptions = TrainingFactory.Loss(config.Loss);
        if (config.Loss.Chunked && run.Student.LmHead?.Lora is not null)
            throw new ConfigException("loss.chunked uses the output weight directly; it cannot train a LoRA on lm_head (set loss.chunked=false)");
        var order = new DataOrder(run.Train, config.Training.BatchSize, config.Seed);
        stepBatches ??= (o, step) => (run.MicroBatches(o, step), null);
        var totalSteps = run.TotalSteps(order);
        var accumulation = Math.Max(1, config.Training.GradientAccumulation);
        using var optimizer = TrainingFactory.Optimizer(config.Training.Optimizer, run.Student.named_parameters().Select(p => (p.name, p.parameter)));
        var schedule = TrainingFactory.Schedule(config.Training.Scheduler, config.Training.Optimizer.Lr, totalSteps);
        var resumed = TrainingCheckpoint.TryResume(config.OutputDir, run.Student, optimizer);
        var history = resumed?.History ?? [];
        var step = resumed?.Step ?? 0;
        if (step > totalSteps)
            throw new ConfigException($"the run's checkpoint is at step {step}, beyond the {totalSteps} steps this config asks for (training.max_steps / epochs); a resumed run can run longer, not shorter");
        // Steps logged after the checkpoint (a run killed between checkpoints) are trained again: the loggers start from the history, so each is logged once.
        using var metrics = Metrics.MetricLoggers.For(config);
        metrics.Start(history, Specs.Configuration.TrainConfigLoader.Normalized(config).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        if (resumed is not null && history.Count > 0)
            progress?.Report(history[^1] with { Message = $"resumed from step {step}" });

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
            var stepTokens = batches.Sum(b => b.TrainedTokens);
            double loss = 0, kd = 0, ce = 0;
            var teacherWait = TimeSpan.Zero;
            for (var m = 0; m < batches.Count; m++)
            {
                // The teacher is awaited before the dispose scope opens: scopes are thread-static.
                var seed = SignalSeed(config, (step - 1) * accumulation + m);
                var asked = Stopwatch.GetTimestamp();
                using var teacherRows = teacher is null ? null
                    : new DeviceRows(await teacher.ScoreAsync(batches[m], TrainingFactory.Signal(config.Signal, vocabulary, config.Loss.Temperature, seed), cancellationToken), run.Student.Device);
                teacherWait += Stopwatch.GetElapsedTime(asked);
                using var scope = torch.NewDisposeScope();
                using var parts = MicroBatchLoss(run, teacherRows, batches[m], lossOptions, vocabulary, stepTokens);
                parts.Total.backward();
                loss += parts.Total.to_type(ScalarType.Float64).item<double>();
                kd += parts.Kd.to_type(ScalarType.Float64).item<double>();
                ce += parts.Ce.to_type(ScalarType.Float64).item<double>();
            }

            double gradNorm;
            try
            {
                gradNorm = run.ClipAndStep(optimizer, step, loss);
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
            var e = new TrainEvent(step, totalSteps, loss, kd, ce, optimizer.LearningRate, gradNorm, stepTokens / stepTime.TotalSeconds, stepTokens,
                run.EvalDue(step, totalSteps) ? await Evaluate() : null, message, stepTime.TotalSeconds, teacherWait.TotalSeconds);
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

    /// <summary>
    /// The loss of one micro-batch: the student's shifted hidden states meet the teacher's rows (or
    /// only the labels) through the chunked (or plain) loss, normalised by the step's tokens.
    /// </summary>
    private static LossParts MicroBatchLoss(RecipeRun run, ITeacherRows? teacherRows, Batch batch, DistillationLossOptions lossOptions, int vocabulary, long stepTokens)
    {
        var (hidden, labels) = Shifted(run.Student.Hidden(batch.InputIds, batch.AttentionMask, batch.PositionIds, null, batch.DocumentIds), batch.Labels);
        // The chunked loss projects hidden·Wᵀ itself and has no soft-capping (Gemma 2's final logits): such a student takes the plain loss.
        return run.Config.Loss.Chunked && run.Student.Config.FinalLogitSoftcap is null
            ? ChunkedDistillationLoss.Compute(hidden, run.Student.OutputWeight.narrow(0, 0, vocabulary), teacherRows, labels, lossOptions, stepTokens)
            : DistillationLoss.Compute(run.Student.Logits(hidden).narrow(-1, 0, vocabulary), teacherRows?.Block(0, teacherRows.Rows), labels, lossOptions, stepTokens);
    }

    /// <summary>The CUDA generator's seed for step <paramref name="step"/> (a pure function: resume-exact without saved state).</summary>
    internal static long CudaStepSeed(int seed, long step) => unchecked(seed * 2_147_483_647L + step * 1_000_000_007L) & long.MaxValue;

    /// <summary>The seed of micro-batch <paramref name="index"/>'s teacher signal (sampled signals draw from it; a resumed run draws the same).</summary>
    internal static long SignalSeed(TrainConfig config, long index) => config.Seed * 1_000_003L + index;

    /// <summary>Position t predicts token t + 1: hidden states of positions 0..T−2 against labels 1..T−1, flattened.</summary>
    internal static (Tensor Hidden, Tensor Labels) Shifted(Tensor hidden, Tensor labels)
    {
        var length = hidden.shape[1];
        return (hidden.narrow(1, 0, length - 1).reshape(-1, hidden.shape[^1]), labels.narrow(1, 1, length - 1).reshape(-1));
    }
}
