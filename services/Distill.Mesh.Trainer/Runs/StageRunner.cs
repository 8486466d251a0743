using System.Diagnostics;
using System.Text.Json;
using Distill.Mesh.Clients.Extractor;
using Distill.Mesh.Clients.Registry;
using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Modeling.Extraction;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Specs.Runs;
using Distill.Mesh.Training.Evaluation;
using Distill.Mesh.Training.Recipes;
using Distill.Mesh.Training.Teachers;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Trainer.Runs;

/// <summary>
/// Takes a run through its stages in order, each in this process: precompute (the train stage's
/// micro-batches scored through the teacher services, filling their caches), train (the recipe),
/// extract (LoRA from teacher − student), evaluate (the result on held-out data, with the
/// teacher) and publish (the result to the registry with its lineage). Finished stages are
/// skipped, so a resumed run continues where it stopped; each transition is saved before it is
/// reported.
/// </summary>
public sealed class StageRunner(ITeacherConnector connector, MeshChannels channels, IOptions<TrainerOptions> options, ILogger<StageRunner> logger)
{
    /// <summary>Runs what is left of <paramref name="run"/>; returns the run's closing note.</summary>
    /// <param name="run">The run.</param>
    /// <param name="save">Persists the run's stages (called after a stage's record changed, before watchers hear of it).</param>
    /// <param name="cancellationToken">Stops the running stage (training checkpoints first).</param>
    public async Task<string?> RunAsync(TrainerRun run, Action save, CancellationToken cancellationToken)
    {
        var spec = run.Spec.Spec;
        var config = spec.Train;
        var remotes = new Dictionary<string, ITeacherSignal>(StringComparer.Ordinal);
        foreach (var endpoint in config.Teachers.Select(t => t.Endpoint).OfType<string>().Distinct())
            remotes[endpoint] = await connector.ConnectAsync(endpoint, cancellationToken);
        Func<TeacherConfig, ITeacherSignal?>? connect = remotes.Count == 0 ? null : t => t.Endpoint is { } e ? remotes[e] : null;
        var notes = new List<string>();

        void Set(StageRecord stage) => run.Update(stage, save);

        foreach (var pending in run.Stages.Where(s => s.State != StageState.Succeeded && run.Runs(s.Name)))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var stage = pending with { State = StageState.Running, Started = pending.Started ?? DateTime.UtcNow, Ended = null, Message = "" };
            Set(stage);
            using var activity = MeshTelemetry.Source.StartActivity($"trainer.stage.{stage.Name}").ForRun(run.RunId);
            var throttle = Stopwatch.StartNew();
            void Progress(long done, long total)
            {
                // Progress is reported about twice a second, and always at the end.
                if (done < total && throttle.ElapsedMilliseconds < 500)
                    return;
                throttle.Restart();
                stage = stage with { Done = done, Total = total };
                run.Update(stage);
            }

            var finished = stage.Name switch
            {
                Stage.Precompute => await PrecomputeAsync(spec, remotes, stage, Progress, cancellationToken),
                Stage.Train => await TrainAsync(run, stage, connect, remotes.Values.OfType<RemoteTeacher>().ToList(), cancellationToken),
                Stage.Extract => await ExtractAsync(run, stage, Progress, cancellationToken),
                Stage.Evaluate => await EvaluateAsync(run, stage, connect, cancellationToken),
                Stage.Publish => await PublishAsync(run, stage, cancellationToken),
                _ => throw new InvalidOperationException($"unknown stage '{stage.Name}'"),
            };
            Set(finished with { State = StageState.Succeeded, Ended = DateTime.UtcNow });
            logger.LogInformation("Run {RunId}: stage {Stage} done: {Message}", run.RunId, stage.Name, finished.Message);
            if (stage.Name == Stage.Publish)
                notes.Add(finished.Message);
        }

        var clients = remotes.Values.OfType<RemoteTeacher>().ToList();
        if (clients.Count > 0 && clients.Sum(c => c.ScoredSequences) > 0)
            notes.Insert(0, $"teacher cache hits {clients.Sum(c => c.CachedSequences) / (double)clients.Sum(c => c.ScoredSequences):P1} of {clients.Sum(c => c.ScoredSequences)} sequences");
        foreach (var note in clients.SelectMany(c => c.CacheNotes).Distinct())
        {
            logger.LogWarning("Run {RunId}: the teacher's cache: {Note}", run.RunId, note);
            notes.Insert(Math.Min(1, notes.Count), $"teacher cache: {note}");
        }
        return notes.Count == 0 ? null : string.Join("; ", notes);
    }

    private static async Task<StageRecord> PrecomputeAsync(RunSpec spec, Dictionary<string, ITeacherSignal> remotes, StageRecord stage, Action<long, long> progress, CancellationToken cancellationToken)
    {
        // On one machine the shards run in turn; on Kubernetes each is a pod (teacher precompute job).
        long batches = 0, sequences = 0;
        var teachers = spec.Train.Teachers.Select(t => remotes[t.Endpoint!]).Distinct().ToList();
        for (var i = 0; i < teachers.Count; i++)
        {
            var offset = i;
            var result = await SignalPrecompute.RunAsync(spec.Train, teachers[i], shard: 0, shards: 1,
                new Reporter<(long Done, long Total)>(p => progress(offset * p.Total + p.Done, teachers.Count * p.Total)), cancellationToken);
            (batches, sequences) = (batches + result.MicroBatches, sequences + result.Sequences);
        }

        return stage with { Done = batches, Total = batches, Message = $"scored {sequences} sequences in {batches} micro-batches through {teachers.Count} teacher service(s)" };
    }

    private static async Task<StageRecord> TrainAsync(TrainerRun run, StageRecord stage, Func<TeacherConfig, ITeacherSignal?>? connect, IReadOnlyList<RemoteTeacher> remotes, CancellationToken cancellationToken)
    {
        var (scored, cached) = (remotes.Sum(r => r.ScoredSequences), remotes.Sum(r => r.CachedSequences));
        var result = await RecipeRunner.RunAsync(run.Spec.Spec.Train, RerunPolicy.Resume, new StepProgress(run), cancellationToken, connect);
        if (!result.Completed)
            throw new OperationCanceledException("the train stage stopped at a checkpoint", cancellationToken);
        (scored, cached) = (remotes.Sum(r => r.ScoredSequences) - scored, remotes.Sum(r => r.CachedSequences) - cached);
        return stage with
        {
            Done = result.Steps,
            Total = result.Steps,
            Eval = result.FinalEval,
            Output = result.AdapterPath ?? result.ModelPath,
            Message = $"{result.Steps} steps; {(result.AdapterPath is not null ? "adapter" : "model")} in {result.AdapterPath ?? result.ModelPath}" +
                (scored > 0 ? $"; teacher cache hits {cached / (double)scored:P1} of {scored} sequences" : ""),
        };
    }

    private static async Task<StageRecord> ExtractAsync(TrainerRun run, StageRecord stage, Action<long, long> progress, CancellationToken cancellationToken)
    {
        var spec = run.Spec.Spec;
        var trained = Path.Combine(spec.Train.OutputDir, "model");
        var (teacher, student, output) = ExtractionSpecs.Folders(spec, spec.Has(Stage.Train) && File.Exists(Path.Combine(trained, "config.json")) ? trained : null);
        var summary = await Task.Run(() =>
        {
            using var extractor = LoraExtractor.Open(teacher, student, ExtractionSpecs.ToOptions(spec.Extract, spec.Train.Seed));
            var total = 0;
            return extractor.Run(output, cleanup: false, e =>
            {
                if (e.Kind == "tensor")
                    progress(++total, extractor.Plan.Tasks.Count);
            }, cancellationToken);
        }, cancellationToken);
        var modules = summary.Tensors.Count(t => t.Skipped is null);
        return stage with { Done = summary.Tensors.Count, Total = summary.Tensors.Count, Output = output, Message = $"{modules} modules of {student} → {output}" };
    }

    /// <summary>
    /// The run's result, read from the run's folder (a stage may have run in another pod): the
    /// extracted adapter on its student, else the trained adapter on the student, else the trained model.
    /// </summary>
    private static (string Model, string? Adapter, string Method) Result(TrainerRun run)
    {
        var spec = run.Spec.Spec;
        var (model, adapter) = (Path.Combine(spec.Train.OutputDir, "model"), Path.Combine(spec.Train.OutputDir, "adapter"));
        var trainedModel = spec.Has(Stage.Train) && File.Exists(Path.Combine(model, "config.json")) ? model : null;
        if (spec.Has(Stage.Extract))
        {
            var (_, student, extracted) = ExtractionSpecs.Folders(spec, trainedModel);
            return File.Exists(Path.Combine(extracted, "adapter_config.json"))
                ? (student, extracted, "extract")
                : throw new InvalidOperationException($"the extract stage's adapter is not in {extracted} (did the extract stage finish?)");
        }

        if (spec.Has(Stage.Train) && File.Exists(Path.Combine(adapter, "adapter_config.json")))
            return (spec.Train.Student.Model, adapter, spec.Train.Recipe);
        return trainedModel is not null
            ? (trainedModel, null, spec.Train.Recipe)
            : throw new InvalidOperationException($"the train stage's result is not in {spec.Train.OutputDir} (did the train stage finish?)");
    }

    private static async Task<StageRecord> EvaluateAsync(TrainerRun run, StageRecord stage, Func<TeacherConfig, ITeacherSignal?>? connect, CancellationToken cancellationToken)
    {
        var spec = run.Spec.Spec;
        var (model, adapter, _) = Result(run);
        using var teacher = spec.Train.Teachers.Count == 0 ? null : KdRecipe.LoadTeachers(spec.Train, connect);
        var eval = await ResultEvaluation.EvaluateAsync(spec.Train, model, adapter, spec.Evaluate.Dataset, spec.Evaluate.MaxExamples, teacher, denseTeacher: connect is null, cancellationToken);
        Specs.Storage.AtomicFile.WriteAllText(Path.Combine(spec.Train.OutputDir, "eval.json"), JsonSerializer.Serialize(eval, TrainConfigLoader.Json));
        return stage with
        {
            Eval = eval,
            Message = $"perplexity {eval.Perplexity:F3}{(eval.KlToTeacher is { } kl ? $", KL to teacher {kl:F4}, top-1 agreement {eval.Top1Agreement:P1}" : "")} over {eval.Tokens} tokens of {spec.Evaluate.Dataset ?? "the eval split"}",
        };
    }

    private async Task<StageRecord> PublishAsync(TrainerRun run, StageRecord stage, CancellationToken cancellationToken)
    {
        var spec = run.Spec.Spec;
        var (model, adapter, method) = Result(run);
        var metrics = run.Stages.FirstOrDefault(s => s.Name == Stage.Evaluate)?.Eval ?? run.Stages.FirstOrDefault(s => s.Name == Stage.Train)?.Eval;
        var registry = spec.Train.Publish!.Registry ?? options.Value.Registry;
        Contracts.Registry.V1.Artifact artifact;
        try
        {
            artifact = await ResultPublisher.PublishAsync(spec.Train, adapter ?? model, adapter is null ? spec.Train.Student.Model : model, method, metrics, run.RunId, run.Spec.Text,
                channels.For(registry), MeshAuth.Headers(channels.TokenFor(registry)), cancellationToken);
        }
        catch (global::Grpc.Core.RpcException e) when (e.StatusCode is global::Grpc.Core.StatusCode.Unavailable or global::Grpc.Core.StatusCode.DeadlineExceeded)
        {
            throw new global::Grpc.Core.RpcException(new global::Grpc.Core.Status(e.StatusCode, $"the registry at {registry} is unreachable ({e.Status.Detail})"));
        }

        var name = $"{artifact.Manifest.Name}:{artifact.Version}";
        return stage with { Output = name, Message = $"pushed {name} to {registry}" };
    }

    /// <summary>Step events go to the run synchronously (Progress&lt;T&gt; would post them to another thread).</summary>
    private sealed class StepProgress(TrainerRun run) : IProgress<TrainEvent>
    {
        public void Report(TrainEvent value) => run.Publish(value);
    }

    /// <summary>
    /// Progress handled on the reporting thread, in order (Progress&lt;T&gt; posts to the thread pool,
    /// where a late report could overwrite the stage's final record).
    /// </summary>
    private sealed class Reporter<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
