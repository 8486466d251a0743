using System.Text.Json;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Adapters;

/// <summary>
/// Attaches LoRA adapters to a model, merges them, and saves/loads them in PEFT's format:
/// <c>adapter_model.safetensors</c> with keys <c>base_model.model.&lt;module&gt;.lora_A.weight</c>
/// ([r, in]) and <c>.lora_B.weight</c> ([out, r]), plus <c>adapter_config.json</c>.
/// Loading is strict: PEFT itself only warns about keys it cannot place, which silently turns a
/// misnamed adapter into a no-op.
/// </summary>
public static class LoraAdapter
{
    public const string WeightsFileName = "adapter_model.safetensors";
    public const string ConfigFileName = "adapter_config.json";
    public const string KeyPrefix = "base_model.model.";

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    /// <summary>
    /// Attaches fresh adapters to the modules <paramref name="config"/> targets (A Kaiming-uniform
    /// from <paramref name="seed"/>, B zero) and freezes every base weight.
    /// </summary>
    /// <returns>The adapted module paths.</returns>
    public static IReadOnlyList<string> Attach(CausalLanguageModel model, LoraConfig config, long seed = 0)
    {
        config.Validate();
        if (Adapted(model).Count > 0)
            throw new InvalidOperationException("the model already has LoRA adapters attached");
        var targets = LoraTargets.Select(model, config);
        using var generator = new Generator((ulong)seed, model.Device);
        using (torch.no_grad())
        {
            foreach (var (path, projection) in targets)
            {
                var (rank, alpha) = LoraTargets.RankAndAlpha(config, path);
                var lora = new LoraLayer(projection.InFeatures, projection.OutFeatures, rank, alpha, config.LoraDropout, config.UseRsLora, projection.Weight.dtype, projection.Weight.device);
                // nn.Linear's default (Kaiming-uniform, a = √5): U(−1/√in, 1/√in), as PEFT initialises A.
                var bound = 1.0 / Math.Sqrt(projection.InFeatures);
                lora.A.weight!.uniform_(-bound, bound, generator);
                projection.AttachLora(lora);
            }
        }

        foreach (var (name, parameter) in model.named_parameters())
            parameter.requires_grad = name.Contains(".lora_", StringComparison.Ordinal);
        return targets.Select(t => t.Path).ToList();
    }

    /// <summary>The projections that carry an adapter, by path.</summary>
    public static IReadOnlyList<(string Path, Projection Module)> Adapted(CausalLanguageModel model) =>
        LoraTargets.Linears(model).Where(l => l.Module.Lora is not null).ToList();

    /// <summary>Folds every adapter into its base weight (W ← W + scaling·B·A).</summary>
    public static void Merge(CausalLanguageModel model)
    {
        foreach (var (_, projection) in Adapted(model))
            projection.Lora!.MergeInto(projection.Weight);
    }

    /// <summary>Takes every merged adapter back out of its base weight.</summary>
    public static void Unmerge(CausalLanguageModel model)
    {
        foreach (var (_, projection) in Adapted(model))
            projection.Lora!.UnmergeFrom(projection.Weight);
    }

    /// <summary>The adapter tensors under PEFT's key names.</summary>
    public static List<KeyValuePair<string, Tensor>> Tensors(CausalLanguageModel model) =>
        Adapted(model).SelectMany(a => new[]
        {
            KeyValuePair.Create($"{KeyPrefix}{a.Path}.lora_A.weight", (Tensor)a.Module.Lora!.A.weight!),
            KeyValuePair.Create($"{KeyPrefix}{a.Path}.lora_B.weight", (Tensor)a.Module.Lora!.B.weight!),
        }).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();

    /// <summary>Writes the attached adapters and their config to <paramref name="folder"/> (each file atomically).</summary>
    public static void Save(CausalLanguageModel model, LoraConfig config, string folder)
    {
        var tensors = Tensors(model);
        if (tensors.Count == 0)
            throw new InvalidOperationException("the model has no LoRA adapters to save");
        if (Adapted(model).Any(a => a.Module.Lora!.Merged))
            throw new InvalidOperationException("unmerge the adapters before saving them");
        Directory.CreateDirectory(folder);
        SafetensorsWriter.Write(Path.Combine(folder, WeightsFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        WriteConfig(config, folder);
    }

    /// <summary>Writes <c>adapter_config.json</c> atomically.</summary>
    public static void WriteConfig(LoraConfig config, string folder) =>
        AtomicFile.WriteAllText(Path.Combine(folder, ConfigFileName), JsonSerializer.Serialize(config, JsonOptions) + "\n");

    /// <summary>Reads <c>adapter_config.json</c>.</summary>
    public static LoraConfig ReadConfig(string folder)
    {
        var path = Path.Combine(folder, ConfigFileName);
        if (!File.Exists(path))
            throw new FileNotFoundException($"no {ConfigFileName} in '{folder}'");
        try
        {
            var config = JsonSerializer.Deserialize<LoraConfig>(File.ReadAllText(path))
                ?? throw new AdapterFormatException($"{path}: empty config");
            config.Validate();
            return config;
        }
        catch (JsonException e)
        {
            throw new AdapterFormatException($"{path}: invalid JSON ({e.Message})", e);
        }
        catch (AdapterFormatException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            throw new AdapterFormatException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Attaches and loads a PEFT adapter. Every adapter key must name a targeted module of this
    /// model with the right shape, and every targeted module must have both factors.
    /// </summary>
    /// <param name="model">The base model.</param>
    /// <param name="folder">The adapter folder.</param>
    /// <param name="dropout">Replaces the adapter's lora_dropout (to train on from it).</param>
    public static LoraConfig Load(CausalLanguageModel model, string folder, double? dropout = null)
    {
        var config = ReadConfig(folder);
        if (dropout is { } rate)
            config.LoraDropout = rate;
        var weights = Path.Combine(folder, WeightsFileName);
        if (!File.Exists(weights))
            throw new FileNotFoundException($"no {WeightsFileName} in '{folder}'");
        using var file = SafetensorsFile.Open(weights);

        var linears = LoraTargets.Linears(model).ToDictionary(l => l.Path, l => l.Module);
        var problems = new List<string>();
        foreach (var info in file.Tensors)
        {
            if (!info.Name.StartsWith(KeyPrefix, StringComparison.Ordinal) || !(info.Name.EndsWith(".lora_A.weight", StringComparison.Ordinal) || info.Name.EndsWith(".lora_B.weight", StringComparison.Ordinal)))
            {
                problems.Add($"'{info.Name}' is not a PEFT LoRA key ({KeyPrefix}<module>.lora_A.weight / .lora_B.weight)");
                continue;
            }

            var path = info.Name[KeyPrefix.Length..^".lora_A.weight".Length];
            if (!linears.ContainsKey(path))
                problems.Add($"'{info.Name}' matches no module of the model");
        }

        if (problems.Count > 0)
            throw new AdapterFormatException($"{weights}: {string.Join("; ", problems.Take(20))}{(problems.Count > 20 ? $"; … ({problems.Count - 20} more)" : "")}");

        var paths = Attach(model, config);
        foreach (var name in file.Tensors.Select(t => t.Name))
        {
            var path = name[KeyPrefix.Length..^".lora_A.weight".Length];
            if (!paths.Contains(path))
                problems.Add($"'{name}' is for module {path}, which target_modules does not select");
        }

        foreach (var path in paths)
        {
            var lora = linears[path].Lora!;
            foreach (var (key, parameter) in new[] { ($"{KeyPrefix}{path}.lora_A.weight", lora.A.weight!), ($"{KeyPrefix}{path}.lora_B.weight", lora.B.weight!) })
            {
                if (!file.Contains(key))
                    problems.Add($"missing '{key}'");
                else if (!file.GetInfo(key).Shape.SequenceEqual(parameter.shape))
                    problems.Add($"'{key}' has shape [{string.Join(", ", file.GetInfo(key).Shape)}], expected [{string.Join(", ", parameter.shape)}] (r = {lora.Rank})");
                else
                    file.CopyInto(key, parameter);
            }
        }

        if (problems.Count > 0)
        {
            Detach(model);
            throw new AdapterFormatException($"{weights}: adapter does not fit the model: {string.Join("; ", problems.Take(20))}");
        }

        return config;
    }

    /// <summary>Removes all adapters (unmerging them first) and unfreezes the base weights.</summary>
    public static void Detach(CausalLanguageModel model)
    {
        foreach (var (_, projection) in Adapted(model))
            projection.DetachLora();
        foreach (var (_, parameter) in model.named_parameters())
            parameter.requires_grad = true;
    }
}
