using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Specs.Storage;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Adapters;

/// <summary>
/// Folds a PEFT LoRA adapter into its base model and writes a plain HF model folder, as PEFT's
/// <c>merge_and_unload()</c> + <c>save_pretrained</c> would: W' = W + scaling·B·A for linear
/// modules (scaling = alpha/r, alpha/√r with use_rslora, per module from rank_pattern and
/// alpha_pattern), E' = E + scaling·(B·A)ᵀ for embedding tables. Each merged weight is computed
/// in float64 from the float32 base and factors and rounded once to the output dtype. What the
/// adapter holds that a merge cannot reproduce exactly (DoRA, modules_to_save, biases, ...) is
/// refused by <see cref="LoraConfig.Validate"/> and the strict loader, never dropped.
/// </summary>
public static class MergedModelExporter
{
    /// <summary>Sequences the check compares, and their length (capped by max_position_embeddings).</summary>
    public const int CheckSequences = 3, CheckTokens = 24;

    /// <summary>The output element types.</summary>
    public static readonly IReadOnlyDictionary<string, ScalarType> DTypes = new Dictionary<string, ScalarType>
    {
        ["float32"] = ScalarType.Float32,
        ["bfloat16"] = ScalarType.BFloat16,
        ["float16"] = ScalarType.Float16,
    };

    /// <summary>
    /// The check's bound on |merged − adapted| logits, as a fraction of max(1, max |logit|):
    /// float32 1e-4 (summation order only); bfloat16 2⁻⁴ and float16 2⁻⁷, 16 units of rounding of
    /// 8- and 11-bit significands (the weights themselves are rounded; it catches a dropped or
    /// misscaled module, an overflow, a wrong tensor, not rounding).
    /// </summary>
    public static double Tolerance(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => 1e-4,
        ScalarType.BFloat16 => 1.0 / 16,
        ScalarType.Float16 => 1.0 / 128,
        _ => throw new ArgumentException($"no tolerance for {dtype}"),
    };

    /// <summary>Merges and writes; on any failure (the check included) the destination is left as it was.</summary>
    public static MergedExportReport Export(MergedExportOptions options, Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var watch = Stopwatch.StartNew();
        var (adapterFolder, baseFolder) = options.Source;
        if (options.MaxShardBytes < 1)
            throw new ArgumentException($"the shard size must be at least 1 byte (got {options.MaxShardBytes})");
        if (options.DType is { } asked && !DTypes.Values.Contains(asked))
            throw new ArgumentException($"output dtype {asked} is not supported (use {string.Join(", ", DTypes.Keys)})");
        var configPath = Path.Combine(baseFolder, "config.json");
        var config = ModelConfigs.Load(baseFolder);
        var configJson = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        var dtype = options.DType ?? BaseDType(baseFolder, configJson);
        RefuseOverwritingInputs(options.Destination, adapterFolder, baseFolder);
        AdapterValidator.Validate(adapterFolder, baseFolder);

        using var staged = StagedFolder.Create(options.Destination, options.Replace, "export");
        progress?.Invoke($"loading {baseFolder} (float32) with the adapter {adapterFolder}");
        using var ids = options.Check ? CheckIds(config) : null;
        Tensor? reference = null;
        IReadOnlyList<string> modules;
        double mergeDiff = 0, scale = 1;
        try
        {
            using (var model = CausalLanguageModel.FromPretrained(baseFolder, ScalarType.Float32))
            {
                LoraAdapter.Load(model, adapterFolder);
                if (ids is not null)
                {
                    reference = Logits(model, ids);
                    using var largest = reference.abs().max();
                    scale = Math.Max(1, largest.item<float>());
                }

                var merged = MergeInPlace(model, dtype, cancellationToken);
                modules = [.. merged.Keys.Select(k => k[..^".weight".Length])];
                if (ids is not null)
                {
                    using var logits = Logits(model, ids);
                    mergeDiff = MaxAbsDiff(reference!, logits);
                    Require(mergeDiff, Tolerance(ScalarType.Float32) * scale, "the merged float32 weights");
                }

                progress?.Invoke($"writing {model.ParameterCount():N0} parameters as {Name(dtype)}");
                WriteWeights(model, merged, dtype, staged.Path, options.MaxShardBytes, cancellationToken);
            }

            configJson["torch_dtype"] = Name(dtype);
            // transformers ≥ 4.56 writes "dtype" instead; a config that has it keeps it in step.
            if (configJson.ContainsKey("dtype"))
                configJson["dtype"] = Name(dtype);
            AtomicFile.WriteAllText(Path.Combine(staged.Path, "config.json"), configJson.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            var copied = CopyCompanions(adapterFolder, baseFolder, staged.Path);

            MergeCheck? check = null;
            if (ids is not null)
            {
                progress?.Invoke("checking the written model's logits against the adapted model's");
                using var written = CausalLanguageModel.FromPretrained(staged.Path, ScalarType.Float32);
                using var logits = Logits(written, ids);
                var exportDiff = MaxAbsDiff(reference!, logits);
                Require(exportDiff, Tolerance(dtype) * scale, $"the written {Name(dtype)} model");
                check = new MergeCheck((int)ids.shape[0], (int)ids.shape[1], scale, mergeDiff, Tolerance(ScalarType.Float32) * scale, exportDiff, Tolerance(dtype) * scale);
            }

            var files = Directory.EnumerateFiles(staged.Path, "*.safetensors").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToList();
            long bytes;
            using (var checkpoint = SafetensorsCheckpoint.Open(staged.Path))
                bytes = checkpoint.Names.Sum(n => checkpoint.GetInfo(n).ByteLength);
            cancellationToken.ThrowIfCancellationRequested();
            staged.Commit();
            return new MergedExportReport(staged.Target, adapterFolder, baseFolder, Name(dtype), modules, files, bytes, copied, check, watch.Elapsed.TotalSeconds);
        }
        finally
        {
            reference?.Dispose();
        }
    }

    /// <summary>The name of an output dtype as config.json writes it.</summary>
    public static string Name(ScalarType dtype) => DTypes.Single(d => d.Value == dtype).Key;

    /// <summary>The base's torch_dtype (or dtype), else the dtype its embedding is stored in.</summary>
    private static ScalarType BaseDType(string baseFolder, JsonObject config)
    {
        var named = (config["torch_dtype"] ?? config["dtype"]) is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
        if (named is not null && named != "auto")
        {
            return DTypes.TryGetValue(named, out var dtype)
                ? dtype
                : throw new ArgumentException($"{Path.Combine(baseFolder, "config.json")}: torch_dtype '{named}' is not an output dtype; choose one of {string.Join(", ", DTypes.Keys)}");
        }

        const string Embedding = "model.embed_tokens.weight";
        using var checkpoint = SafetensorsCheckpoint.Open(baseFolder);
        SafetensorsDType? stored = checkpoint.Contains(Embedding) ? checkpoint.GetInfo(Embedding).DType : null;
        var matching = DTypes.Values.Where(d => SafetensorsDTypes.FromScalarType(d) == stored).ToList();
        return matching.Count == 1
            ? matching[0]
            : throw new ArgumentException($"{baseFolder}: config.json has no torch_dtype and {Embedding} is {stored?.ToString() ?? "not there"}; choose the dtype ({string.Join(", ", DTypes.Keys)})");
    }

    /// <summary>Replacing the base or the adapter (or a folder holding one) would delete what is being read.</summary>
    private static void RefuseOverwritingInputs(string destination, string adapterFolder, string baseFolder)
    {
        static string Full(string p) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(p)) + Path.DirectorySeparatorChar;
        var target = Full(destination);
        foreach (var (input, what) in new[] { (baseFolder, "base model"), (adapterFolder, "adapter") })
        {
            if (Full(input).StartsWith(target, StringComparison.Ordinal))
                throw new ArgumentException($"the destination '{destination}' is or holds the {what} folder '{input}'; write the merged model elsewhere");
        }
    }

    /// <summary>Seeded random token ids [sequences, tokens] over the whole vocabulary.</summary>
    private static Tensor CheckIds(DecoderConfig config)
    {
        using var generator = new Generator(0);
        return torch.randint(0, config.VocabSize, [CheckSequences, Math.Min(CheckTokens, config.MaxPositionEmbeddings)], generator: generator);
    }

    private static Tensor Logits(CausalLanguageModel model, Tensor ids)
    {
        using var noGrad = torch.no_grad();
        model.eval();
        return model.Forward(ids);
    }

    private static double MaxAbsDiff(Tensor expected, Tensor actual)
    {
        using var scope = torch.NewDisposeScope();
        return (actual.to_type(ScalarType.Float64) - expected.to_type(ScalarType.Float64)).abs().max().item<double>();
    }

    private static void Require(double difference, double tolerance, string what)
    {
        if (!(difference <= tolerance))
            throw new MergeCheckException($"{what} do not reproduce the adapted model: max |logit difference| {difference:G4} exceeds {tolerance:G4}; nothing was written to the destination");
    }

    /// <summary>
    /// Folds every adapter into its weight: the update in float64, the sum rounded once to
    /// <paramref name="dtype"/> (returned by weight name) and to float32 in the model (for the
    /// check); the adapters are then detached.
    /// </summary>
    private static Dictionary<string, Tensor> MergeInPlace(CausalLanguageModel model, ScalarType dtype, CancellationToken cancellationToken)
    {
        var updates = LoraAdapter.Adapted(model).Select(a => (a.Path, Update: (LoraUpdate)a.Module.Lora!, Weight: (Tensor)a.Module.Weight))
            .Concat(LoraAdapter.AdaptedEmbeddings(model).Select(e => (e.Path, Update: (LoraUpdate)e.Module.Lora!, Weight: (Tensor)e.Module.Weight)));
        var merged = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (torch.no_grad())
        {
            foreach (var (path, update, weight) in updates)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                var sum = weight.to_type(ScalarType.Float64) + update.DeltaWeight(ScalarType.Float64);
                merged[$"{path}.weight"] = sum.to_type(dtype).MoveToOuterDisposeScope();
                weight.copy_(sum.to_type(ScalarType.Float32));
            }
        }

        LoraAdapter.Detach(model);
        return merged;
    }

    /// <summary>Every weight in <paramref name="dtype"/> (merged ones as merged), finite, in HF's names, sharded.</summary>
    private static void WriteWeights(CausalLanguageModel model, Dictionary<string, Tensor> merged, ScalarType dtype, string folder, long maxShardBytes, CancellationToken cancellationToken)
    {
        using var scope = torch.NewDisposeScope();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        using (torch.no_grad())
        {
            foreach (var (name, parameter) in model.named_parameters().OrderBy(p => p.name, StringComparer.Ordinal))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var tensor = merged.TryGetValue(name, out var sum) ? sum : parameter.detach().to_type(dtype);
                if (!tensor.isfinite().all().item<bool>())
                {
                    throw new ArgumentException(parameter.isfinite().all().item<bool>()
                        ? $"'{name}' overflows {Name(dtype)} (largest |value| {parameter.abs().max().item<float>():G4}); export as bfloat16 or float32"
                        : $"'{name}' is not finite after the merge (the adapter or the base holds NaN or ∞)");
                }

                tensors.Add(KeyValuePair.Create(name, tensor));
            }
        }

        SafetensorsCheckpoint.Save(folder, tensors, maxShardBytes);
        foreach (var tensor in merged.Values)
            tensor.Dispose();
    }

    /// <summary>
    /// The tokenizer files, and generation_config.json, from the adapter folder where it has them
    /// (as a set: never one tokenizer's files mixed with another's), else from the base.
    /// </summary>
    private static List<CopiedFile> CopyCompanions(string adapterFolder, string baseFolder, string destination)
    {
        var copied = new List<CopiedFile>();
        foreach (var group in new[] { ModelFolderFiles.Tokenizer, [ModelFolderFiles.GenerationConfig] })
        {
            var (source, from) = group.Any(name => File.Exists(Path.Combine(adapterFolder, name))) ? (adapterFolder, "adapter") : (baseFolder, "base");
            copied.AddRange(ModelFolderFiles.Copy(source, destination, group).Select(name => new CopiedFile(name, from)));
        }

        return copied;
    }
}
