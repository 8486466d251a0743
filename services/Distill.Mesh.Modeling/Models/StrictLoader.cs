using Distill.Mesh.Modeling.Checkpoints;

namespace Distill.Mesh.Modeling.Models;

/// <summary>
/// Loads a checkpoint into a model strictly: every model parameter must be present with its
/// exact shape, and every checkpoint tensor must be used. Problems are collected and reported
/// together, by name.
/// </summary>
public static class StrictLoader
{
    private const int ListedNames = 20;

    /// <summary>
    /// Checks, from the headers alone, that <paramref name="config"/> describes the checkpoint's
    /// weights — the embedding is vocab_size × hidden_size and the layers number
    /// num_hidden_layers — so a config that lies is refused before the model is allocated.
    /// </summary>
    public static void CheckSizes(DecoderConfig config, SafetensorsCheckpoint checkpoint)
    {
        const string Embedding = "model.embed_tokens.weight";
        var problems = new List<string>();
        if (!checkpoint.Contains(Embedding))
        {
            problems.Add($"the checkpoint has no {Embedding}");
        }
        else
        {
            var shape = checkpoint.GetInfo(Embedding).Shape;
            if (!shape.SequenceEqual([config.VocabSize, (long)config.HiddenSize]))
                problems.Add($"{Embedding} is [{string.Join(", ", shape)}] but config.json says vocab_size {config.VocabSize} × hidden_size {config.HiddenSize}");
        }

        var layers = checkpoint.Names.Select(LayerIndex).Where(i => i >= 0).Distinct().Count();
        if (layers != config.NumHiddenLayers)
            problems.Add($"the checkpoint has {layers} decoder layers but config.json says num_hidden_layers {config.NumHiddenLayers}");
        if (problems.Count > 0)
            throw new CheckpointFormatException($"{checkpoint.Folder}: config.json does not describe these weights: {string.Join("; ", problems)}");
    }

    private static int LayerIndex(string name)
    {
        const string Prefix = "model.layers.";
        if (!name.StartsWith(Prefix, StringComparison.Ordinal))
            return -1;
        var end = name.IndexOf('.', Prefix.Length);
        return end > Prefix.Length && int.TryParse(name.AsSpan(Prefix.Length, end - Prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index) ? index : -1;
    }

    /// <summary>Loads <paramref name="checkpoint"/> into <paramref name="model"/> or throws listing every problem.</summary>
    public static void Load(CausalLanguageModel model, SafetensorsCheckpoint checkpoint)
    {
        var parameters = model.named_parameters()
            .Where(p => !p.name.Contains(".lora_", StringComparison.Ordinal))
            .ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var names = checkpoint.Names.ToHashSet(StringComparer.Ordinal);

        var missing = parameters.Keys.Where(n => !names.Contains(n)).Order(StringComparer.Ordinal).ToList();
        var unexpected = names.Where(n => !parameters.ContainsKey(n) && !IsIgnorable(n, model.Config))
            .Order(StringComparer.Ordinal).ToList();
        var misshaped = parameters.Where(p => names.Contains(p.Key))
            .Select(p => (p.Key, Expected: p.Value.shape, Actual: checkpoint.GetInfo(p.Key).Shape))
            .Where(p => !p.Expected.SequenceEqual(p.Actual))
            .Select(p => $"{p.Key}: checkpoint [{string.Join(", ", p.Actual)}], model [{string.Join(", ", p.Expected)}]")
            .ToList();

        if (missing.Count + unexpected.Count + misshaped.Count > 0)
        {
            var problems = new List<string>();
            if (missing.Count > 0)
                problems.Add($"missing keys ({missing.Count}): {List(missing)}");
            if (unexpected.Count > 0)
                problems.Add($"unexpected keys ({unexpected.Count}): {List(unexpected)}");
            if (misshaped.Count > 0)
                problems.Add($"shape mismatches ({misshaped.Count}): {List(misshaped)}");
            throw new CheckpointFormatException(
                $"{checkpoint.Folder}: checkpoint does not match the {model.Config.ModelType} model built from its config.json; {string.Join("; ", problems)}");
        }

        foreach (var (name, parameter) in parameters)
            checkpoint.CopyInto(name, parameter);
    }

    /// <summary>
    /// Tensors HF also skips: a copy of the tied output head, and the rotary <c>inv_freq</c>
    /// buffers that old checkpoints saved.
    /// </summary>
    private static bool IsIgnorable(string name, DecoderConfig config) =>
        (config.TieWordEmbeddings && name == "lm_head.weight")
        || name.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal);

    private static string List(List<string> names) =>
        string.Join(", ", names.Take(ListedNames)) + (names.Count > ListedNames ? $", … ({names.Count - ListedNames} more)" : "");
}
