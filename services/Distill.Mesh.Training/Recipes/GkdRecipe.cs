using System.Diagnostics;
using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Training.Configuration;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Evaluation;
using Distill.Mesh.Training.Teachers;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// On-policy distillation (GKD): with probability <c>gkd.lmbda</c> a micro-batch's responses are
/// replaced by the student's own completions of its prompts, then the teacher scores the sequences
/// and the student learns the loss (usually <c>jsd</c>, with <c>beta</c>) on the response tokens.
/// With lmbda = 0 this is exactly the kd recipe.
/// </summary>
public static class GkdRecipe
{
    public static async Task<TrainResult> RunAsync(TrainConfig config, JsonObject? resolved, IProgress<TrainEvent>? progress, CancellationToken cancellationToken, Func<TeacherConfig, ITeacherSignal>? connect = null)
    {
        if (config.Teachers.Count == 0)
            throw new ConfigException("the gkd recipe needs a teacher");
        if (config.Gkd.Lmbda is < 0 or > 1)
            throw new ConfigException($"gkd.lmbda must be in [0, 1] (got {config.Gkd.Lmbda})");

        // Setup
        using var run = RecipeRun.Start(config, resolved);
        using var teacher = KdRecipe.LoadTeachers(config, connect);
        var vocabulary = TeacherCompatibility.Check(teacher.Describe(), run.Tokenizer, run.Student.Config.VocabSize);
        await run.LoadDataAsync(vocabulary, cancellationToken);
        var lossOptions = TrainingFactory.Loss(config.Loss);
        var stop = GenerationConfig.Load(config.Student.Model).StopTokens(run.Student.Config);
        var order = new DataOrder(run.Train, config.Training.BatchSize, config.Seed);
        var totalSteps = run.TotalSteps(order);
        var accumulation = Math.Max(1, config.Training.GradientAccumulation);
        using var optimizer = TrainingFactory.Optimizer(config.Training.Optimizer, run.Student.named_parameters().Select(p => (p.name, p.parameter)));
        var schedule = TrainingFactory.Schedule(config.Training.Scheduler, config.Training.Optimizer.Lr, totalSteps);
        var resumed = TrainingCheckpoint.TryResume(config.OutputDir, run.Student, optimizer);
        var history = resumed?.History ?? [];
        var step = resumed?.Step ?? 0;

        // Train
        while (step < totalSteps)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                TrainingCheckpoint.Save(config.OutputDir, step, run.Student, optimizer, history);
                return run.Finish(step, completed: false, history, null);
            }

            var watch = Stopwatch.StartNew();
            step++;
            optimizer.LearningRate = schedule.At(step);
            var batches = new List<Batch>();
            var onPolicy = 0;
            for (var m = 0; m < accumulation; m++)
            {
                var index = (step - 1) * accumulation + m;
                var examples = order.MicroBatch(index);
                // The coin for each micro-batch depends only on (seed, index): a resumed run flips the same coins.
                if (new Random(HashCode.Combine(config.Seed, index)).NextDouble() < config.Gkd.Lmbda)
                {
                    using var noGrad = torch.no_grad();
                    examples = Completions.Generate(run.Student, examples, config.Generation, stop, run.PadTokenId, config.Seed * 7919L + index, config.Dataset.MaxLength);
                    onPolicy++;
                }

                batches.Add(Batching.Collate(examples, run.PadTokenId, run.Student.Device));
            }

            var stepTokens = batches.Sum(b => b.TrainedTokens);
            double loss = 0, kd = 0, ce = 0;
            for (var m = 0; m < batches.Count; m++)
            {
                var seed = config.Seed * 1_000_003L + (step - 1) * accumulation + m;
                using var teacherRows = await teacher.ScoreAsync(batches[m], TrainingFactory.Signal(config.Signal, vocabulary, config.Loss.Temperature, seed), cancellationToken);
                using var scope = torch.NewDisposeScope();
                using var parts = KdRecipe.MicroBatchLoss(run, teacherRows, batches[m], lossOptions, vocabulary, stepTokens);
                parts.Total.backward();
                loss += parts.Total.to_type(ScalarType.Float64).item<double>();
                kd += parts.Kd.to_type(ScalarType.Float64).item<double>();
                ce += parts.Ce.to_type(ScalarType.Float64).item<double>();
            }

            var gradNorm = run.ClipAndStep(optimizer);
            foreach (var batch in batches)
                batch.Dispose();

            var e = new TrainEvent(step, totalSteps, loss, kd, ce, optimizer.LearningRate, gradNorm, stepTokens / watch.Elapsed.TotalSeconds, stepTokens,
                run.EvalDue(step, totalSteps) ? await Evaluator.EvaluateAsync(run.Student, run.Eval, teacher, vocabulary, run.PadTokenId, cancellationToken: cancellationToken, denseTeacher: connect is null) : null,
                onPolicy > 0 ? $"{onPolicy}/{accumulation} micro-batches on-policy" : null);
            run.Record(e, history, progress, optimizer);
        }

        // Outputs (a last checkpoint lets a rerun with more steps continue from here)
        if (resumed?.Step != step)
            TrainingCheckpoint.Save(config.OutputDir, step, run.Student, optimizer, history);
        var final = run.Eval.Count > 0 ? await Evaluator.EvaluateAsync(run.Student, run.Eval, teacher, vocabulary, run.PadTokenId, cancellationToken: cancellationToken, denseTeacher: connect is null) : null;
        return run.Finish(step, completed: true, history, final);
    }
}
