using Distill.Mesh.Specs.Storage;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Training.Metrics;
using Distill.Mesh.Training.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// A resumable checkpoint: trainable weights, optimizer state, torch's RNG state and the step (and
/// the step's eval loss, when it was evaluated). Written into a temporary folder that is renamed
/// into place, so a crash never leaves a partial checkpoint that looks complete; the newest
/// complete one is resumed. The metric history is not copied in: it is the run's metrics.jsonl,
/// made durable before the checkpoint is written (checkpoints of older versions carry it and
/// still resume from it).
/// </summary>
public static class TrainingCheckpoint
{
    internal const string Prefix = "step-";

    private const string StateFile = "trainer_state.json";

    private const string DataStateFile = "data_state.json";

    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public static string Folder(string outputDir) => Path.Combine(outputDir, "checkpoints");

    /// <summary>
    /// Writes the checkpoint of <paramref name="step"/>, then deletes the ones <paramref name="retention"/>
    /// no longer keeps. <paramref name="history"/> (the run's events so far, already durable in
    /// metrics.jsonl) gives the step's eval loss; <paramref name="dataState"/> is where a streamed
    /// dataset stood (null: the data order is a pure function of the step).
    /// </summary>
    public static void Save(string outputDir, long step, CausalLanguageModel model, TrainingOptimizer optimizer, IReadOnlyList<TrainEvent> history, CheckpointRetention retention,
        JsonObject? dataState = null)
    {
        var root = Folder(outputDir);
        Directory.CreateDirectory(root);
        var final = Path.Combine(root, $"{Prefix}{step:D8}");
        var temp = Path.Combine(root, $".{Prefix}{step:D8}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(temp);
        try
        {
            var trainable = model.named_parameters().Where(p => p.parameter.requires_grad)
                .Select(p => KeyValuePair.Create(p.name, (Tensor)p.parameter)).ToList();
            SafetensorsWriter.Write(Path.Combine(temp, "trainable.safetensors"), trainable);
            SafetensorsWriter.Write(Path.Combine(temp, "optimizer.safetensors"), optimizer.SaveState());
            SafetensorsWriter.Write(Path.Combine(temp, "rng.safetensors"), [KeyValuePair.Create("torch", torch.get_rng_state())]);
            if (dataState is not null)
                AtomicFile.WriteAllText(Path.Combine(temp, DataStateFile), dataState.ToJsonString());
            var evaluated = history.LastOrDefault(e => e.Step == step)?.Eval;
            AtomicFile.WriteAllText(Path.Combine(temp, StateFile), JsonSerializer.Serialize(new State(step, evaluated is null ? null : Math.Log(evaluated.Perplexity)), Json));
            if (Directory.Exists(final))
                Directory.Delete(final, recursive: true);
            Directory.Move(temp, final);
            Telemetry.TrainingMetrics.RecordCheckpoint(outputDir);
        }
        catch
        {
            Directory.Delete(temp, recursive: true);
            throw;
        }

        retention.Prune(root, final);
    }

    /// <summary>The complete checkpoint folders, oldest first.</summary>
    public static List<string> All(string outputDir)
    {
        var root = Folder(outputDir);
        return Directory.Exists(root)
            ? Directory.GetDirectories(root, $"{Prefix}*").Where(d => !Path.GetFileName(d).StartsWith('.')).Order(StringComparer.Ordinal).ToList()
            : [];
    }

    /// <summary>The newest complete checkpoint folder, or null.</summary>
    public static string? Latest(string outputDir) => All(outputDir).LastOrDefault();

    /// <summary>The eval loss recorded with a checkpoint (null: its step was not evaluated, or it cannot be read).</summary>
    public static double? EvalLoss(string checkpoint)
    {
        try
        {
            return JsonSerializer.Deserialize<State>(File.ReadAllText(Path.Combine(checkpoint, StateFile)))?.EvalLoss;
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Whether a checkpoint carries its own history (written by an older version).</summary>
    internal static bool CarriesHistory(string checkpoint) =>
        JsonSerializer.Deserialize<State>(File.ReadAllText(Path.Combine(checkpoint, StateFile)))?.History is not null;

    /// <summary>
    /// Restores the newest checkpoint into the model and optimizer; returns its step, the history up
    /// to it and where a streamed dataset stood, or null.
    /// </summary>
    /// <exception cref="MetricsFormatException">The checkpoint carries no history and metrics.jsonl lacks steps up to it.</exception>
    public static (long Step, List<TrainEvent> History, JsonObject? DataState)? TryResume(string outputDir, CausalLanguageModel model, TrainingOptimizer optimizer)
    {
        var latest = Latest(outputDir);
        if (latest is null)
            return null;

        var saved = JsonSerializer.Deserialize<State>(File.ReadAllText(Path.Combine(latest, StateFile)))
            ?? throw new CheckpointFormatException($"{latest}: {StateFile} is empty");
        // Read before any tensor is touched, so a missing history leaves the model as it was.
        var history = saved.History ?? MetricsFile.ReadUpTo(outputDir, saved.Step);
        var dataFile = Path.Combine(latest, DataStateFile);
        var dataState = File.Exists(dataFile)
            ? System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(dataFile)) as JsonObject ?? throw new CheckpointFormatException($"{dataFile}: not a JSON object")
            : null;
        var parameters = model.named_parameters().Where(p => p.parameter.requires_grad).ToDictionary(p => p.name, p => p.parameter);
        using (var weights = SafetensorsFile.Open(Path.Combine(latest, "trainable.safetensors")))
        {
            var names = weights.Tensors.Select(t => t.Name).ToHashSet();
            if (!names.SetEquals(parameters.Keys))
                throw new CheckpointFormatException($"{latest}: its trainable weights do not match this run's (a different LoRA or model?)");
            foreach (var (name, parameter) in parameters)
                weights.CopyInto(name, parameter);
        }

        using (var state = SafetensorsFile.Open(Path.Combine(latest, "optimizer.safetensors")))
            optimizer.LoadState(state.Tensors.ToDictionary(t => t.Name, t => state.ReadTensor(t.Name)));
        using (var rng = SafetensorsFile.Open(Path.Combine(latest, "rng.safetensors")))
            torch.set_rng_state(rng.ReadTensor("torch"));
        return (saved.Step, history, dataState);
    }

    /// <summary>trainer_state.json. <paramref name="History"/> is only in checkpoints of older versions.</summary>
    private sealed record State(long Step, double? EvalLoss, List<TrainEvent>? History = null);
}
