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
            var (selectsLinear, selectsEmbedding) = (LoraTargets.Matcher(config), LoraTargets.Matcher(config, embeddings: true));
            var factors = new Dictionary<string, HashSet<char>>(StringComparer.Ordinal);
            foreach (var info in file.Tensors)
            {
                if (LoraAdapter.ParseKey(info.Name) is not { } key)
                {
                    problems.Add($"'{info.Name}' is not a PEFT LoRA key ({LoraAdapter.KeyPrefix}<module>.lora_A.weight / .lora_B.weight, or .lora_embedding_A / _B)");
                    continue;
                }

                var module = key.Path;
                if (!baseShapes.TryGetValue($"{module}.weight", out var shape) || shape.Length != 2 || LoraTargets.IsEmbedding(module) != key.Embedding)
                {
                    problems.Add($"'{info.Name}': the base model has no {(key.Embedding ? "embedding" : "linear module")} '{module}'");
                    continue;
                }

                if (!(key.Embedding ? selectsEmbedding : selectsLinear)(module))
                    problems.Add($"'{info.Name}': target_modules {config.TargetModules.GetRawText()} does not select '{module}'");
                var rank = LoraTargets.RankAndAlpha(config, module).Rank;
                // Linear [out, in]: A [r, in], B [out, r]. Embedding [vocab, hidden]: A [r, vocab], B [hidden, r].
                long[] expected = (key.Factor, key.Embedding) switch
                {
                    ('A', false) => [rank, shape[1]],
                    ('B', false) => [shape[0], rank],
                    ('A', true) => [rank, shape[0]],
                    _ => [shape[1], rank],
                };
                if (!info.Shape.SequenceEqual(expected))
                    problems.Add($"'{info.Name}' has shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", expected)}] (module [{string.Join(", ", shape)}], r = {rank})");
                if (info.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.F64))
                    problems.Add($"'{info.Name}' has dtype {info.DType}; LoRA factors are floating point");
                if (!factors.TryGetValue(module, out var seen))
                    factors[module] = seen = [];
                seen.Add(key.Factor);
            }

            foreach (var (module, seen) in factors.Where(f => f.Value.Count < 2))
                problems.Add($"'{module}' has factor {seen.Single()} but not {(seen.Contains('A') ? 'B' : 'A')}");
            if (file.Tensors.Count == 0)
                problems.Add("the adapter has no tensors");
            var unserved = baseShapes.Where(b => b.Value.Length == 2 && b.Key.EndsWith(".weight", StringComparison.Ordinal))
                .Select(b => b.Key[..^".weight".Length])
                .Where(m => (LoraTargets.IsEmbedding(m) ? selectsEmbedding : selectsLinear)(m) && !factors.ContainsKey(m)).Order(StringComparer.Ordinal).ToList();
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
