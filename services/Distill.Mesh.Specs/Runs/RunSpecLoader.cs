using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Mesh.Specs.Configuration;

namespace Distill.Mesh.Specs.Runs;

/// <summary>A run spec as parsed: the typed spec, its canonical JSON (every key, defaults included) and that JSON's SHA-256.</summary>
public sealed record ParsedRunSpec(RunSpec Spec, JsonObject Canonical, string Sha256)
{
    /// <summary>The top-level keys the text (with its overrides) gave, before defaults filled the rest.</summary>
    public IReadOnlySet<string> GivenKeys { get; init; } = new HashSet<string>();

    /// <summary>The canonical JSON as text (what a trainer or a pod is given; JSON is YAML).</summary>
    public string Text => Canonical.ToJsonString();
}

/// <summary>
/// Reads run specs: bounded YAML (<see cref="YamlTree"/>), dotted overrides over the whole spec
/// (<c>stages=[train,publish]</c>, <c>mesh.teacher=…</c>, <c>training.max_steps=…</c>), the
/// run-level sections split from the recipe, each bound with key-naming errors, then the default
/// stages. Two specs are the same run exactly when their canonical JSON is equal.
/// </summary>
public static class RunSpecLoader
{
    /// <summary>Top-level keys that belong to the run, not to the recipe.</summary>
    public static readonly string[] Sections = ["stages", "mesh", "precompute", "extract", "evaluate"];

    /// <param name="yaml">The spec text.</param>
    /// <param name="overrides">Dotted overrides, applied in order.</param>
    /// <param name="folder">Folder relative paths resolve against; null: relative paths are an error (a service cannot know the caller's folder).</param>
    /// <param name="source">What the text is, for messages.</param>
    public static ParsedRunSpec Parse(string yaml, IEnumerable<string> overrides, string? folder, string source)
    {
        var lines = new Dictionary<string, int>();
        var tree = YamlTree.ParseMapping(yaml, source, lines);
        foreach (var item in overrides)
            TrainConfigLoader.Apply(tree, item);
        var run = new JsonObject();
        foreach (var section in Sections)
        {
            if (tree.Remove(section, out var value))
                run[section] = value;
        }

        var spec = ConfigBinder.Bind<RunSpec>(run, source, lines);
        var (train, _) = TrainConfigLoader.Resolve(tree, folder ?? Path.GetPathRoot(Path.GetTempPath())!, source, lines, Sections);
        if (folder is null)
        {
            // Checked on the text, before anything resolved them against the wrong folder.
            var relative = TrainConfigLoader.RelativePaths(ConfigBinder.Bind<TrainConfig>(tree, source))
                .Where(r => r.Key != "output_dir" || tree.ContainsKey("output_dir")).Concat(RelativePaths(spec)).ToList();
            ConfigBinder.Fail(source, relative.Select(r => $"{r.Key}: '{r.Path}' is a relative path; give an absolute path (the service cannot know the folder it is relative to)").ToList());
        }
        else
        {
            spec.Extract.Teacher = Absolute(spec.Extract.Teacher, folder);
            spec.Extract.Student = Absolute(spec.Extract.Student, folder);
            spec.Evaluate.Dataset = Absolute(spec.Evaluate.Dataset, folder);
        }

        spec.Train = train;
        if (!run.ContainsKey("stages"))
            spec.Stages = train.Publish is { Name.Length: > 0 } ? [Stage.Train, Stage.Publish] : [Stage.Train];
        return Canonicalize(spec) with { GivenKeys = tree.Select(p => p.Key).Concat(run.Select(p => p.Key)).ToHashSet(StringComparer.Ordinal) };
    }

    /// <summary>The canonical form of a spec (also after a caller changed it, e.g. chose its output folder).</summary>
    public static ParsedRunSpec Canonicalize(RunSpec spec)
    {
        var canonical = JsonSerializer.SerializeToNode(spec, TrainConfigLoader.Json)!.AsObject();
        foreach (var (key, value) in TrainConfigLoader.Normalized(spec.Train).ToList())
            canonical[key] = value?.DeepClone();
        var sha = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToJsonString())));
        return new ParsedRunSpec(spec, canonical, sha);
    }

    private static string? Absolute(string? path, string folder) =>
        string.IsNullOrEmpty(path) || Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(folder, path));

    private static IEnumerable<(string Key, string Path)> RelativePaths(RunSpec spec) =>
        new[] { ("extract.teacher", spec.Extract.Teacher), ("extract.student", spec.Extract.Student), ("evaluate.dataset", spec.Evaluate.Dataset) }
            .Where(p => !string.IsNullOrEmpty(p.Item2) && !Path.IsPathRooted(p.Item2)).Select(p => (p.Item1, p.Item2!));
}
