using Distill.Mesh.Specs.Storage;
using System.Text.Json;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Checkpoints;

namespace Distill.Mesh.Modeling.Extraction;

/// <summary>The consolidation: verified shards → adapter_model.safetensors, adapter_config.json, extraction_report.json.</summary>
public sealed partial class LoraExtractor
{
    /// <summary>
    /// Merges every finished shard into <c>adapter_model.safetensors</c>, <c>adapter_config.json</c>
    /// and <c>extraction_report.json</c>. Refuses when a shard is missing, stale or damaged. With
    /// <paramref name="cleanup"/>, the shard files go only after the written adapter has been read
    /// back and found equal to them.
    /// </summary>
    public ExtractionSummary Consolidate(string outFolder, bool cleanup = false, Action<ExtractionEvent>? onEvent = null)
    {
        var shards = Enumerable.Range(0, Plan.Shards).Select(s => (Shard: s, Report: Finished(outFolder, s))).ToList();
        var missing = shards.Where(s => s.Report is null).Select(s => s.Shard).ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException($"cannot consolidate: shard(s) {string.Join(", ", missing)} of {Plan.Shards} are not finished for this plan (missing, from other inputs or options, or damaged); run them with --shard-index");

        var reports = shards.SelectMany(s => s.Report!.Tensors).OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        if (!reports.Select(r => r.Name).SequenceEqual(Plan.Tasks))
            throw new InvalidOperationException("cannot consolidate: the shards' tensors are not exactly the plan's");
        var extracted = reports.Where(r => r.Skipped is null).ToList();
        if (extracted.Count == 0)
            throw new InvalidOperationException($"nothing to save: every tensor was skipped ({string.Join("; ", reports.Select(r => r.Skipped).Distinct().Take(5))})");

        var files = shards.Select(s => SafetensorsFile.Open(ShardPath(outFolder, s.Shard, Plan.Shards))).ToList();
        var adapterPath = Path.Combine(outFolder, LoraAdapter.WeightsFileName);
        try
        {
            var keys = files.SelectMany(f => f.Tensors.Select(t => (File: f, t.Name))).OrderBy(k => k.Name, StringComparer.Ordinal).ToList();
            var tensors = keys.Select(k => KeyValuePair.Create(k.Name, k.File.ReadTensor(k.Name))).ToList();
            try
            {
                SafetensorsWriter.Write(adapterPath, tensors, new Dictionary<string, string> { ["format"] = "pt", ["plan_hash"] = Plan.Hash });
            }
            finally
            {
                foreach (var (_, tensor) in tensors)
                    tensor.Dispose();
            }

            Verify(adapterPath, keys);
        }
        finally
        {
            foreach (var file in files)
                file.Dispose();
        }

        LoraAdapter.WriteConfig(Config(extracted), outFolder);
        var clusters = shards.SelectMany(s => s.Report!.Clusters).GroupBy(c => c.Layer).Select(g => g.First()).OrderBy(c => c.Layer).ToList();
        var summary = new ExtractionSummary(
            TeacherFolder, StudentFolder, Plan.Layers.Select(l => l.ToString()).ToList(), clusters, reports,
            extracted.Sum(r => (long)r.Rank * (r.Shape[0] + r.Shape[1])), extracted.Sum(r => r.Shape[0] * r.Shape[1]),
            [.. Plan.NotCarried, .. reports.Where(r => r.Skipped is not null).Select(r => $"{r.Name}: {r.Skipped}")]);
        AtomicFile.WriteAllText(Path.Combine(outFolder, ReportFileName), JsonSerializer.Serialize(summary, JsonOptions) + "\n");
        if (cleanup)
            Directory.Delete(Path.Combine(outFolder, ShardFolder), recursive: true);
        onEvent?.Invoke(new ExtractionEvent("consolidated", -1, reports.Count, reports.Count, Message: $"{extracted.Count} modules → {adapterPath}"));
        return summary;
    }

    /// <summary>Reads the written adapter back: every key present with the shard's exact bytes, nothing else.</summary>
    private static void Verify(string adapterPath, IReadOnlyList<(SafetensorsFile File, string Name)> keys)
    {
        using var written = SafetensorsFile.Open(adapterPath);
        if (written.Tensors.Count != keys.Count)
            throw new IOException($"{adapterPath}: {written.Tensors.Count} tensors written, {keys.Count} expected");
        foreach (var (file, name) in keys)
        {
            if (!written.Contains(name) || !written.GetBytes(name).SequenceEqual(file.GetBytes(name)))
                throw new IOException($"{adapterPath}: '{name}' does not match its shard; shards kept");
        }
    }

    /// <summary>
    /// adapter_config.json for the extracted modules: r is the most common rank, other ranks go to
    /// rank_pattern (and, with alpha = rank, alpha_pattern) by full module path; target_modules
    /// lists module types when they select exactly the extracted modules, else full paths.
    /// </summary>
    private LoraConfig Config(IReadOnlyList<TensorReport> extracted)
    {
        var rank = extracted.GroupBy(r => r.Rank).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        var odd = extracted.Where(r => r.Rank != rank).ToList();
        var types = extracted.Select(r => ExtractionPlan.TypeOf(r.Name)).Distinct().Order(StringComparer.Ordinal).ToList();
        var modules = extracted.Select(r => r.Module).ToHashSet(StringComparer.Ordinal);
        var config = new LoraConfig
        {
            BaseModelNameOrPath = StudentFolder,
            R = rank,
            LoraAlpha = Options.Alpha ?? rank,
            TargetModules = JsonSerializer.SerializeToElement(types),
            RankPattern = odd.ToDictionary(r => r.Module, r => r.Rank),
            AlphaPattern = Options.Alpha is null ? odd.ToDictionary(r => r.Module, r => (double)r.Rank) : [],
        };

        // What PEFT (and our loader) would select with the type list; if that is more than was extracted, list full paths.
        var selects = LoraTargets.Matcher(config);
        var selectedByTypes = _student.Names
            .Where(n => n.EndsWith(".weight", StringComparison.Ordinal) && _student.GetInfo(n).Shape.Length == 2)
            .Select(ExtractionPlan.ModuleOf).Where(selects).ToHashSet(StringComparer.Ordinal);
        if (!selectedByTypes.SetEquals(modules))
            config.TargetModules = JsonSerializer.SerializeToElement(modules.Order(StringComparer.Ordinal).ToList());
        return config;
    }
}
