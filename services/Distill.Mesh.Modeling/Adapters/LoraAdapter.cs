using Distill.Mesh.Specs.Storage;
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
    /// Attaches fresh adapters to the modules <paramref name="config"/> targets and freezes every
    /// base weight. Linear modules: A Kaiming-uniform from <paramref name="seed"/>, B zero;
    /// embedding tables: A zero, B Gaussian (PEFT's initialisations; either way nothing changes yet).
    /// </summary>
    /// <returns>The adapted module paths.</returns>
    public static IReadOnlyList<string> Attach(CausalLanguageModel model, LoraConfig config, long seed = 0)
    {
        config.Validate();
        if (Adapted(model).Count > 0 || AdaptedEmbeddings(model).Count > 0)
            throw new InvalidOperationException("the model already has LoRA adapters attached");
        var (linears, embeddings) = LoraTargets.Select(model, config);
        if (embeddings.Count > 0 && model.LmHead is null)
            throw new AdapterFormatException($"LoRA on {embeddings[0].Path}: this model ties its output head to the embedding table, so an embedding adapter would change the input side only until merged (and both after); not supported");
        using var generator = new Generator((ulong)seed, model.Device);
        using (torch.no_grad())
        {
            foreach (var (path, projection) in linears)
            {
                var (rank, alpha) = LoraTargets.RankAndAlpha(config, path);
                var lora = new LoraLayer(projection.InFeatures, projection.OutFeatures, rank, alpha, config.LoraDropout, config.UseRsLora, projection.Weight.dtype, projection.Weight.device);
                // nn.Linear's default (Kaiming-uniform, a = √5): U(−1/√in, 1/√in), as PEFT initialises A.
                var bound = 1.0 / Math.Sqrt(projection.InFeatures);
                lora.A.weight!.uniform_(-bound, bound, generator);
                projection.AttachLora(lora);
            }

            foreach (var (path, embedding) in embeddings)
            {
                var (rank, alpha) = LoraTargets.RankAndAlpha(config, path);
                var lora = new LoraEmbedding(embedding.Weight.shape[0], embedding.Weight.shape[1], rank, alpha, config.UseRsLora, embedding.Weight.dtype, embedding.Weight.device);
                lora.B.normal_(0, 1, generator);
                embedding.AttachLora(lora);
            }
        }

        foreach (var (name, parameter) in model.named_parameters())
            parameter.requires_grad = name.Contains(".lora_", StringComparison.Ordinal);
        return linears.Select(t => t.Path).Concat(embeddings.Select(e => e.Path)).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The projections that carry an adapter, by path.</summary>
    public static IReadOnlyList<(string Path, Projection Module)> Adapted(CausalLanguageModel model) =>
        LoraTargets.Linears(model).Where(l => l.Module.Lora is not null).ToList();

    /// <summary>The embedding tables that carry an adapter, by path.</summary>
    public static IReadOnlyList<(string Path, TokenEmbedding Module)> AdaptedEmbeddings(CausalLanguageModel model) =>
        LoraTargets.Embeddings(model).Where(e => e.Module.Lora is not null).ToList();

    /// <summary>Folds every adapter into its base weight (W ← W + scaling·B·A; E ← E + scaling·(B·A)ᵀ).</summary>
    public static void Merge(CausalLanguageModel model)
    {
        foreach (var (_, projection) in Adapted(model))
            projection.Lora!.MergeInto(projection.Weight);
        foreach (var (_, embedding) in AdaptedEmbeddings(model))
            embedding.Lora!.MergeInto(embedding.Weight);
    }

    /// <summary>Takes every merged adapter back out of its base weight.</summary>
    public static void Unmerge(CausalLanguageModel model)
    {
        foreach (var (_, projection) in Adapted(model))
            projection.Lora!.UnmergeFrom(projection.Weight);
        foreach (var (_, embedding) in AdaptedEmbeddings(model))
            embedding.Lora!.UnmergeFrom(embedding.Weight);
    }

    /// <summary>PEFT's key of a factor: <c>…lora_A.weight</c> for linear modules, <c>…lora_embedding_A</c> for embeddings.</summary>
    public static string KeyOf(string path, char factor, bool embedding) =>
        embedding ? $"{KeyPrefix}{path}.lora_embedding_{factor}" : $"{KeyPrefix}{path}.lora_{factor}.weight";

    /// <summary>The module path, factor ('A' or 'B') and kind of a PEFT LoRA key; null for anything else.</summary>
    public static (string Path, char Factor, bool Embedding)? ParseKey(string key)
    {
        if (!key.StartsWith(KeyPrefix, StringComparison.Ordinal))
            return null;
        foreach (var (suffix, factor, embedding) in KeySuffixes)
        {
            if (key.EndsWith(suffix, StringComparison.Ordinal) && key.Length > KeyPrefix.Length + suffix.Length)
                return (key[KeyPrefix.Length..^suffix.Length], factor, embedding);
        }

        return null;
    }

    private static readonly (string Suffix, char Factor, bool Embedding)[] KeySuffixes =
        [(".lora_A.weight", 'A', false), (".lora_B.weight", 'B', false), (".lora_embedding_A", 'A', true), (".lora_embedding_B", 'B', true)];

    /// <summary>The adapter tensors under PEFT's key names.</summary>
    public static List<KeyValuePair<string, Tensor>> Tensors(CausalLanguageModel model) =>
        Adapted(model).SelectMany(a => new[]
        {
            KeyValuePair.Create(KeyOf(a.Path, 'A', false), (Tensor)a.Module.Lora!.A.weight!),
            KeyValuePair.Create(KeyOf(a.Path, 'B', false), (Tensor)a.Module.Lora!.B.weight!),
        }).Concat(AdaptedEmbeddings(model).SelectMany(e => new[]
        {
            KeyValuePair.Create(KeyOf(e.Path, 'A', true), (Tensor)e.Module.Lora!.A),
            KeyValuePair.Create(KeyOf(e.Path, 'B', true), (Tensor)e.Module.Lora!.B),
        })).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();

    /// <summary>Writes the attached adapters and their config to <paramref name="folder"/> (each file atomically).</summary>
    public static void Save(CausalLanguageModel model, LoraConfig config, string folder)
    {
        var tensors = Tensors(model);
        if (tensors.Count == 0)
            throw new InvalidOperationException("the model has no LoRA adapters to save");
        if (Adapted(model).Any(a => a.Module.Lora!.Merged) || AdaptedEmbeddings(model).Any(e => e.Module.Lora!.Merged))
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

        var modules = LoraTargets.Linears(model).Select(l => l.Path).Concat(LoraTargets.Embeddings(model).Select(e => e.Path)).ToHashSet(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var info in file.Tensors)
        {
            if (ParseKey(info.Name) is not { } key)
                problems.Add($"'{info.Name}' is not a PEFT LoRA key ({KeyPrefix}<module>.lora_A.weight / .lora_B.weight, or .lora_embedding_A / _B)");
            else if (!modules.Contains(key.Path))
                problems.Add($"'{info.Name}' matches no module of the model");
        }

        if (problems.Count > 0)
            throw new AdapterFormatException($"{weights}: {string.Join("; ", problems.Take(20))}{(problems.Count > 20 ? $"; … ({problems.Count - 20} more)" : "")}");

        var paths = Attach(model, config);
        foreach (var name in file.Tensors.Select(t => t.Name))
        {
            var path = ParseKey(name)!.Value.Path;
            if (!paths.Contains(path))
                problems.Add($"'{name}' is for module {path}, which target_modules does not select");
        }

        var factors = Adapted(model).SelectMany(a => new[]
        {
            (Key: KeyOf(a.Path, 'A', false), Parameter: (Tensor)a.Module.Lora!.A.weight!, Rank: a.Module.Lora!.Rank),
            (Key: KeyOf(a.Path, 'B', false), Parameter: (Tensor)a.Module.Lora!.B.weight!, Rank: a.Module.Lora!.Rank),
        }).Concat(AdaptedEmbeddings(model).SelectMany(e => new[]
        {
            (Key: KeyOf(e.Path, 'A', true), Parameter: (Tensor)e.Module.Lora!.A, Rank: e.Module.Lora!.Rank),
            (Key: KeyOf(e.Path, 'B', true), Parameter: (Tensor)e.Module.Lora!.B, Rank: e.Module.Lora!.Rank),
        }));
        foreach (var (key, parameter, rank) in factors)
        {
            if (!file.Contains(key))
                problems.Add($"missing '{key}'");
            else if (!file.GetInfo(key).Shape.SequenceEqual(parameter.shape))
                problems.Add($"'{key}' has shape [{string.Join(", ", file.GetInfo(key).Shape)}], expected [{string.Join(", ", parameter.shape)}] (r = {rank})");
            else
                file.CopyInto(key, parameter);
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
        foreach (var (_, embedding) in AdaptedEmbeddings(model))
            embedding.DetachLora();
        foreach (var (_, parameter) in model.named_parameters())
            parameter.requires_grad = true;
    }
}
