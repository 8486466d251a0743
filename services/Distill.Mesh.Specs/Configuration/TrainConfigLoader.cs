using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Distill.Mesh.Specs.Configuration;

/// <summary>
/// Reads a recipe YAML, applies torchtune-style dotted overrides (<c>training.optimizer.lr=1e-4</c>),
/// and binds it to <see cref="TrainConfig"/>. Unknown keys are errors that name the key, so a typo
/// never silently falls back to a default.
/// </summary>
public static class TrainConfigLoader
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
    };

    /// <summary>Loads a YAML file with overrides; paths in the config resolve against the file's folder.</summary>
    public static (TrainConfig Config, JsonObject Resolved) Load(string path, IEnumerable<string> overrides)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"no config file at '{path}'");
        if (new FileInfo(path).Length > YamlTree.MaxBytes)
            throw new ConfigException($"{path}: {new FileInfo(path).Length:N0} bytes exceed the {YamlTree.MaxBytes:N0} a config may have");
        var lines = new Dictionary<string, int>();
        var tree = YamlTree.ParseMapping(File.ReadAllText(path), path, lines);
        foreach (var item in overrides)
            Apply(tree, item);
        return Resolve(tree, Path.GetDirectoryName(Path.GetFullPath(path))!, path, lines);
    }

    /// <summary>Binds a parsed tree; relative paths resolve against <paramref name="folder"/>.</summary>
    public static (TrainConfig Config, JsonObject Resolved) Resolve(JsonObject tree, string folder, string source, IReadOnlyDictionary<string, int>? lines = null, IEnumerable<string>? siblings = null)
    {
        var config = ConfigBinder.Bind<TrainConfig>(tree, source, lines, siblings);
        ResolvePaths(config, folder);
        return (config, Normalized(config));
    }

    /// <summary>The config with every key and its value (defaults included): what a run records as its resolved config.</summary>
    public static JsonObject Normalized(TrainConfig config) => JsonSerializer.SerializeToNode(config, Json)!.AsObject();

    /// <summary>YAML text to a JSON tree (bounded, no aliases: see <see cref="YamlTree"/>).</summary>
    public static JsonObject Parse(string yaml, string source = "config") => YamlTree.ParseMapping(yaml, source);

    /// <summary>Applies one <c>dotted.key=value</c> override; the value is parsed as a YAML scalar or flow list.</summary>
    public static void Apply(JsonObject tree, string item)
    {
        var equals = item.IndexOf('=');
        if (equals <= 0)
            throw new ConfigException($"override '{item}' must look like key.path=value");
        var path = item[..equals].Split('.');
        if (path.Any(p => p.Length == 0))
            throw new ConfigException($"override '{item}': the key path has an empty part");
        var value = YamlTree.ParseValue(item[(equals + 1)..], $"override '{item}'");
        JsonNode node = tree;
        for (var i = 0; i < path.Length; i++)
        {
            var last = i == path.Length - 1;
            if (node is JsonArray list)
            {
                // A numeric segment indexes a list (teachers.0.model=...).
                if (!int.TryParse(path[i], out var index) || index < 0 || index >= list.Count)
                    throw new ConfigException($"override '{item}': '{path[i]}' is not an index of the {list.Count}-item list at '{string.Join('.', path[..i])}'");
                if (last)
                    list[index] = value;
                else
                    node = list[index] ?? throw new ConfigException($"override '{item}': list item {index} is empty");
                continue;
            }

            var mapping = (JsonObject)node;
            if (last)
            {
                mapping[path[i]] = value;
            }
            else
            {
                if (mapping[path[i]] is not (JsonObject or JsonArray))
                    mapping[path[i]] = new JsonObject();
                node = mapping[path[i]]!;
            }
        }
    }

    /// <summary>Makes the config's relative paths absolute against <paramref name="folder"/>.</summary>
    public static void ResolvePaths(TrainConfig config, string folder)
    {
        string Resolve(string p) => string.IsNullOrEmpty(p) || Path.IsPathRooted(p) ? p : Path.GetFullPath(Path.Combine(folder, p));
        config.Student.Model = Resolve(config.Student.Model);
        config.Dataset.Path = Resolve(config.Dataset.Path);
        foreach (var source in config.Dataset.Sources)
            source.Path = Resolve(source.Path);
        config.OutputDir = Resolve(config.OutputDir);
        if (config.Student.Lora is { InitFrom: { } initFrom })
            config.Student.Lora.InitFrom = Resolve(initFrom);
        foreach (var teacher in config.Teachers)
            teacher.Model = Resolve(teacher.Model);
    }

    /// <summary>The config's paths that are relative (for callers that cannot know the folder they are relative to).</summary>
    public static IEnumerable<(string Key, string Path)> RelativePaths(TrainConfig config)
    {
        IEnumerable<(string, string)> All()
        {
            yield return ("student.model", config.Student.Model);
            yield return ("dataset.path", config.Dataset.Path);
            for (var i = 0; i < config.Dataset.Sources.Count; i++)
                yield return ($"dataset.sources.{i}.path", config.Dataset.Sources[i].Path);
            yield return ("output_dir", config.OutputDir);
            if (config.Student.Lora?.InitFrom is { } initFrom)
                yield return ("student.lora.init_from", initFrom);
            for (var i = 0; i < config.Teachers.Count; i++)
                yield return ($"teachers.{i}.model", config.Teachers[i].Model);
        }

        return All().Where(p => !string.IsNullOrEmpty(p.Item2) && !Path.IsPathRooted(p.Item2));
    }
}

/// <summary>A config file or override is invalid; the message names the key.</summary>
public sealed class ConfigException(string message, Exception? inner = null) : Exception(message, inner);
