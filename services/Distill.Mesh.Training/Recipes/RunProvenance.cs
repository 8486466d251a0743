using Distill.Mesh.Specs.Storage;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Specs.Configuration;

namespace Distill.Mesh.Training.Recipes;

/// <summary>What to do when an output folder already holds a run.</summary>
public enum RerunPolicy
{
    /// <summary>Resume it, only if the config is the same (apart from <see cref="RunProvenance.MutableOnResume"/>).</summary>
    Resume,

    /// <summary>Delete what the earlier run wrote there and start over.</summary>
    Restart,
}

/// <summary>
/// A run's record in its output folder: <c>resolved_config.json</c> (every key with its value,
/// written when the run starts and never rewritten) and <c>provenance.jsonl</c> (append-only:
/// started, resumed with the keys that changed, restarted, forked). A rerun resumes only the same
/// run: a config that differs beyond the keys that may change on resume is refused with every
/// differing key named, so a rerun never silently continues another run's checkpoint or rewrites
/// what the folder claims.
/// </summary>
public static class RunProvenance
{
    public const string ResolvedConfigFile = "resolved_config.json";

    public const string LogFile = "provenance.jsonl";

    /// <summary>Keys a resumed run may change (their prefixes): how long it runs and what it logs, evaluates and publishes.</summary>
    public static readonly string[] MutableOnResume =
        ["training.max_steps", "training.epochs", "training.eval_every", "training.checkpoint_every", "training.log_every",
            "training.keep_checkpoints", "training.keep_best", "logging", "publish"];

    /// <summary>What an earlier run writes in its output folder (what a restart deletes; nothing else is touched).</summary>
    private static readonly string[] RunOutputs =
        ["checkpoints", "metrics.jsonl", "loss.svg", "loss.png", "tensorboard", ResolvedConfigFile, LogFile, "model", "adapter", "seq_kd_train.jsonl", "eval.json"];

    /// <summary>
    /// Prepares <paramref name="config"/>'s output folder: records a fresh run, or checks that a
    /// rerun is the same run (logging the keys that changed), or clears it for a restart.
    /// </summary>
    /// <exception cref="ConfigException">The folder holds a different run.</exception>
    public static void Prepare(TrainConfig config, RerunPolicy policy)
    {
        var folder = config.OutputDir;
        var resolved = TrainConfigLoader.Normalized(config);
        var recorded = Path.Combine(folder, ResolvedConfigFile);
        var earlier = File.Exists(recorded) || Directory.Exists(TrainingCheckpoint.Folder(folder));
        if (earlier && policy == RerunPolicy.Restart)
        {
            foreach (var name in RunOutputs.Select(n => Path.Combine(folder, n)))
            {
                if (Directory.Exists(name))
                    Directory.Delete(name, recursive: true);
                else if (File.Exists(name))
                    File.Delete(name);
            }

            Append(folder, new JsonObject { ["event"] = "restarted" });
            earlier = false;
        }

        if (!earlier)
        {
            Directory.CreateDirectory(folder);
            AtomicFile.WriteAllText(recorded, resolved.ToJsonString(TrainConfigLoader.Json));
            Append(folder, new JsonObject { ["event"] = "started" });
            return;
        }

        if (!File.Exists(recorded))
            throw new ConfigException($"output_dir '{folder}' holds checkpoints but no {ResolvedConfigFile}, so this cannot be checked to be the same run; rerun with --restart to start over there, or choose another output_dir");
        var changes = Differences(Read(recorded), resolved);
        var refused = changes.Where(c => !MutableOnResume.Any(m => c.Key == m || c.Key.StartsWith(m + ".", StringComparison.Ordinal))).ToList();
        if (refused.Count > 0)
            throw new ConfigException($"output_dir '{folder}' holds a run with another config ({string.Join("; ", refused.Take(12).Select(Describe))}{(refused.Count > 12 ? $"; … {refused.Count - 12} more" : "")}). " +
                "Rerun with the same config to resume it, --restart to start over in that folder, or --fork DIR to continue from its checkpoint in a new folder; " +
                $"a resumed run may change only {string.Join(", ", MutableOnResume)}");
        var log = new JsonObject { ["event"] = "resumed" };
        if (changes.Count > 0)
            log["changed"] = new JsonObject(changes.Select(c => KeyValuePair.Create(c.Key, (JsonNode?)new JsonArray(c.Before?.DeepClone(), c.After?.DeepClone()))));
        Append(folder, log);
    }

    /// <summary>Whether <paramref name="folder"/> holds (the start of) a run.</summary>
    public static bool Exists(string folder) => File.Exists(Path.Combine(folder, ResolvedConfigFile)) || Directory.Exists(TrainingCheckpoint.Folder(folder));

    /// <summary>
    /// Removes what a run that failed before it trained anything wrote (its record and provenance),
    /// and the folder when nothing else is in it: a failed start leaves no folder claiming a run.
    /// A run that wrote a checkpoint, a metric or generated data is kept.
    /// </summary>
    public static void DiscardIfUntrained(string folder)
    {
        if (!Directory.Exists(folder) || Directory.Exists(TrainingCheckpoint.Folder(folder))
            || RunOutputs.Except([ResolvedConfigFile, LogFile]).Any(n => File.Exists(Path.Combine(folder, n)) || Directory.Exists(Path.Combine(folder, n))))
            return;
        foreach (var name in new[] { ResolvedConfigFile, LogFile })
            File.Delete(Path.Combine(folder, name));
        if (!Directory.EnumerateFileSystemEntries(folder).Any())
            Directory.Delete(folder);
    }

    /// <summary>
    /// Starts the run <paramref name="config"/> describes, in its (new) output folder, from the newest
    /// checkpoint of the run in <paramref name="source"/> (weights, optimizer, RNG) and its history up to it, recording
    /// where it came from. Returns the checkpoint's step.
    /// </summary>
    public static long Fork(string source, TrainConfig config)
    {
        var target = config.OutputDir;
        if (Path.GetFullPath(source) == Path.GetFullPath(target))
            throw new ConfigException("--fork: the new folder is the run's own output_dir");
        var latest = TrainingCheckpoint.Latest(source) ?? throw new ConfigException($"--fork: '{source}' has no checkpoint to fork from");
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
            throw new ConfigException($"--fork: '{target}' is not empty; fork into a new folder");
        var step = long.Parse(Path.GetFileName(latest)[TrainingCheckpoint.Prefix.Length..], System.Globalization.CultureInfo.InvariantCulture);
        // The history up to the checkpoint goes along (read first: a source without it forks nothing); older checkpoints carry their own.
        var history = TrainingCheckpoint.CarriesHistory(latest) ? null : Metrics.MetricsFile.ReadUpTo(source, step);
        var into = Path.Combine(TrainingCheckpoint.Folder(target), Path.GetFileName(latest));
        Directory.CreateDirectory(into);
        foreach (var file in Directory.GetFiles(latest))
            File.Copy(file, Path.Combine(into, Path.GetFileName(file)));
        if (history is not null)
            Metrics.MetricsFile.Write(target, history);
        AtomicFile.WriteAllText(Path.Combine(target, ResolvedConfigFile), TrainConfigLoader.Normalized(config).ToJsonString(TrainConfigLoader.Json));
        Append(target, new JsonObject { ["event"] = "forked", ["from"] = Path.GetFullPath(source), ["step"] = step });
        return step;
    }

    private static JsonObject Read(string path)
    {
        try
        {
            // Written by this or an older version: bound and normalised again, so keys it left to their defaults compare equal.
            var tree = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new ConfigException($"{path} is not a JSON object");
            return TrainConfigLoader.Normalized(tree.Deserialize<TrainConfig>(TrainConfigLoader.Json) ?? new TrainConfig());
        }
        catch (JsonException e)
        {
            throw new ConfigException($"{path} cannot be read ({e.Message}); rerun with --restart to start over", e);
        }
    }

    private sealed record Change(string Key, JsonNode? Before, JsonNode? After);

    private static string Describe(Change c) => $"{c.Key}: {Text(c.Before)} → {Text(c.After)}";

    private static string Text(JsonNode? node) => node?.ToJsonString() ?? "null";

    private static List<Change> Differences(JsonNode? before, JsonNode? after, string path = "")
    {
        if (before is JsonObject a && after is JsonObject b)
        {
            return a.Select(p => p.Key).Union(b.Select(p => p.Key)).Order(StringComparer.Ordinal)
                .SelectMany(k => Differences(a[k], b[k], path.Length == 0 ? k : $"{path}.{k}")).ToList();
        }

        return JsonNode.DeepEquals(before, after) ? [] : [new Change(path, before, after)];
    }

    private static void Append(string folder, JsonObject entry)
    {
        Directory.CreateDirectory(folder);
        entry["time"] = DateTime.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
        File.AppendAllText(Path.Combine(folder, LogFile), entry.ToJsonString() + "\n");
    }
}
