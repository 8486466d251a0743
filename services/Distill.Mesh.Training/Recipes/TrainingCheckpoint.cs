using Distill.Mesh.Specs.Storage;
using System.Text.Json;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Training.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// A resumable checkpoint: trainable weights, optimizer state, torch's RNG state and the step.
/// Written into a temporary folder that is renamed into place, so a crash never leaves a partial
/// checkpoint that looks complete; the newest complete one is resumed.
/// </summary>
public static class TrainingCheckpoint
{
    private const string Prefix = "step-";

    public static string Folder(string outputDir) => Path.Combine(outputDir, "checkpoints");

    public static void Save(string outputDir, long step, CausalLanguageModel model, TrainingOptimizer optimizer, IReadOnlyList<TrainEvent> history)
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
            AtomicFile.WriteAllText(Path.Combine(temp, "trainer_state.json"), JsonSerializer.Serialize(new State(step, history.ToList())));
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
    }

    /// <summary>The newest complete checkpoint folder, or null.</summary>
    public static string? Latest(string outputDir)
    {
        var root = Folder(outputDir);
        return Directory.Exists(root)
            ? Directory.GetDirectories(root, $"{Prefix}*").Where(d => !Path.GetFileName(d).StartsWith('.')).Order(StringComparer.Ordinal).LastOrDefault()
            : null;
    }

    /// <summary>Restores the newest checkpoint into the model and optimizer; returns its step and history, or null.</summary>
    public static (long Step, List<TrainEvent> History)? TryResume(string outputDir, CausalLanguageModel model, TrainingOptimizer optimizer)
    {
        var latest = Latest(outputDir);
        if (latest is null)
            return null;

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
        var saved = JsonSerializer.Deserialize<State>(File.ReadAllText(Path.Combine(latest, "trainer_state.json")))!;
        return (saved.Step, saved.History);
    }

    private sealed record State(long Step, List<TrainEvent> History);
}
