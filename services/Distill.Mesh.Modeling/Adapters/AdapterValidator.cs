using Distill.Mesh.Modeling.Checkpoints;

namespace Distill.Mesh.Modeling.Adapters;

/// <summary>
/// Checks a PEFT LoRA adapter against a base model's weight names and shapes (read from the
/// safetensors headers; no weights are loaded): every key names a real module that
/// target_modules selects, A is [r, in] and B [out, r] with the module's rank, both factors are
/// there, and every selected module has them — what our strict loader and PEFT both need.
/// </summary>
public static class AdapterValidator
{
    /// <summary>The problems found, each naming its key or field (empty: the adapter fits).</summary>
    /// <param name="adapterFolder">Folder with adapter_config.json and adapter_model.safetensors.</param>
    /// <param name="baseShapes">The base model's weights by name (e.g. <c>model.layers.0.self_attn.q_proj.weight</c>).</param>
    public static IReadOnlyList<string> Check(string adapterFolder, IReadOnlyDictionary<string, long[]> baseShapes)
    {
        var problems = new List<string>();
        LoraConfig config;
        try
        {
            config = LoraAdapter.ReadConfig(adapterFolder);
        }
        catch (Exception e) when (e is AdapterFormatException or FileNotFoundException)
        {
            return [e.Message];
        }

        var weights = Path.Combine(adapterFolder, LoraAdapter.WeightsFileName);
        if (!File.Exists(weights))
            return [$"no {LoraAdapter.WeightsFileName}"];
        SafetensorsFile file;
        try
        {
            file = SafetensorsFile.Open(weights);
        }
        catch (CheckpointFormatException e)
        {
            return [e.Message];
        }

        using (file)
        {
            var selects = LoraTargets.Matcher(config);
            var factors = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
            foreach (var info in file.Tensors)
            {
                var factor = info.Name.EndsWith(".lora_A.weight", StringComparison.Ordinal) ? "A"
                    : info.Name.EndsWith(".lora_B.weight", StringComparison.Ordinal) ? "B" : null;
                if (!info.Name.StartsWith(LoraAdapter.KeyPrefix, StringComparison.Ordinal) || factor is null)
                {
                    problems.Add($"'{info.Name}' is not a PEFT LoRA key ({LoraAdapter.KeyPrefix}<module>.lora_A.weight / .lora_B.weight)");
                    continue;
                }

                var module = info.Name[LoraAdapter.KeyPrefix.Length..^".lora_A.weight".Length];
                if (!baseShapes.TryGetValue($"{module}.weight", out var shape) || shape.Length != 2)
                {
                    problems.Add($"'{info.Name}': the base model has no linear module '{module}'");
                    continue;
                }

                if (!selects(module))
                    problems.Add($"'{info.Name}': target_modules {config.TargetModules.GetRawText()} does not select '{module}'");
                var rank = LoraTargets.RankAndAlpha(config, module).Rank;
                long[] expected = factor == "A" ? [rank, shape[1]] : [shape[0], rank];
                if (!info.Shape.SequenceEqual(expected))
                    problems.Add($"'{info.Name}' has shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", expected)}] (module [{string.Join(", ", shape)}], r = {rank})");
                if (info.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.F64))
                    problems.Add($"'{info.Name}' has dtype {info.DType}; LoRA factors are floating point");
                if (!factors.TryGetValue(module, out var seen))
                    factors[module] = seen = [];
                seen.Add(factor);
            }

            foreach (var (module, seen) in factors.Where(f => f.Value.Count < 2))
                problems.Add($"'{module}' has lora_{seen.Single()} but not lora_{(seen.Contains("A") ? "B" : "A")}");
            if (file.Tensors.Count == 0)
                problems.Add("the adapter has no tensors");
            var unserved = baseShapes.Where(b => b.Value.Length == 2 && b.Key.EndsWith(".weight", StringComparison.Ordinal) && !b.Key.EndsWith("embed_tokens.weight", StringComparison.Ordinal))
                .Select(b => b.Key[..^".weight".Length]).Where(m => selects(m) && !factors.ContainsKey(m)).Order(StringComparer.Ordinal).ToList();
            if (unserved.Count > 0)
                problems.Add($"target_modules selects {unserved.Count} module(s) with no factors: {string.Join(", ", unserved.Take(5))}{(unserved.Count > 5 ? ", …" : "")}");
        }

        return problems;
    }

    /// <summary>A checkpoint's weight shapes by name.</summary>
    public static IReadOnlyDictionary<string, long[]> ShapesOf(SafetensorsCheckpoint checkpoint) =>
        checkpoint.Names.ToDictionary(n => n, n => checkpoint.GetInfo(n).Shape, StringComparer.Ordinal);

    /// <summary>Throws <see cref="AdapterFormatException"/> listing the problems (at most 20) when the adapter does not fit the base folder.</summary>
    public static void Validate(string adapterFolder, string baseFolder)
    {
        using var checkpoint = SafetensorsCheckpoint.Open(baseFolder);
        var problems = Check(adapterFolder, ShapesOf(checkpoint));
        if (problems.Count > 0)
            throw new AdapterFormatException($"adapter does not fit base model '{baseFolder}': {string.Join("; ", problems.Take(20))}{(problems.Count > 20 ? $"; … ({problems.Count - 20} more)" : "")}");
    }
}
