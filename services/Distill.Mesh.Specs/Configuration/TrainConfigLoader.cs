using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using YamlDotNet.RepresentationModel;

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
        JsonObject tree;
        try
        {
            tree = Parse(File.ReadAllText(path));
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new ConfigException($"{path}: invalid YAML at line {e.Start.Line}: {e.Message}", e);
        }

        foreach (var item in overrides)
            Apply(tree, item);
        var config = Bind(tree, path);
        return (config, tree);
    }

    /// <summary>YAML text to a JSON tree (scalars typed as YAML 1.2 core would: bool, int, float, null, string).</summary>
    public static JsonObject Parse(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        if (stream.Documents.Count == 0)
            return [];
        return ToJson(stream.Documents[0].RootNode) as JsonObject ?? throw new ConfigException("the config must be a mapping at the top level");
    }

    /// <summary>Applies one <c>dotted.key=value</c> override; the value is parsed as a YAML scalar or flow list.</summary>
    public static void Apply(JsonObject tree, string item)
    {
        var equals = item.IndexOf('=');
        if (equals <= 0)
            throw new ConfigException($"override '{item}' must look like key.path=value");
        var path = item[..equals].Split('.');
        var value = ParseValue(item[(equals + 1)..]);
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

    private static JsonNode? ParseValue(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader($"v: {text}"));
        return ToJson(((YamlMappingNode)stream.Documents[0].RootNode).Children[new YamlScalarNode("v")]);
    }

    private static TrainConfig Bind(JsonObject tree, string path)
    {
        try
        {
            var config = tree.Deserialize<TrainConfig>(Json) ?? new TrainConfig();
            var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
            string Resolve(string p) => string.IsNullOrEmpty(p) || Path.IsPathRooted(p) ? p : Path.GetFullPath(Path.Combine(folder, p));
            config.Student.Model = Resolve(config.Student.Model);
            config.Dataset.Path = Resolve(config.Dataset.Path);
            config.OutputDir = Resolve(config.OutputDir);
            if (config.Student.Lora is { InitFrom: { } initFrom })
                config.Student.Lora.InitFrom = Resolve(initFrom);
            foreach (var teacher in config.Teachers)
                teacher.Model = Resolve(teacher.Model);
            return config;
        }
        catch (JsonException e)
        {
            throw new ConfigException($"{path}: {Describe(e)}", e);
        }
    }

    private static string Describe(JsonException e)
    {
        var where = e.Path?.TrimStart('$', '.') ?? "";
        return e.Message.Contains("could not be mapped", StringComparison.Ordinal)
            ? $"unknown key {e.Message[(e.Message.IndexOf('\'') is var i and >= 0 ? i : 0)..].Split(' ')[0]} under '{where}'"
            : $"bad value at '{where}': {e.Message}";
    }

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode mapping => new JsonObject(mapping.Children.Select(kv =>
            KeyValuePair.Create(((YamlScalarNode)kv.Key).Value!, ToJson(kv.Value)))),
        YamlSequenceNode sequence => new JsonArray(sequence.Children.Select(ToJson).ToArray()),
        YamlScalarNode scalar => Scalar(scalar),
        _ => null,
    };

    private static JsonNode? Scalar(YamlScalarNode scalar)
    {
        var text = scalar.Value ?? "";
        if (scalar.Style is YamlDotNet.Core.ScalarStyle.SingleQuoted or YamlDotNet.Core.ScalarStyle.DoubleQuoted)
            return JsonValue.Create(text);
        if (text is "" or "~" or "null" or "Null" or "NULL")
            return null;
        if (text is "true" or "True" or "TRUE")
            return JsonValue.Create(true);
        if (text is "false" or "False" or "FALSE")
            return JsonValue.Create(false);
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var integer))
            return JsonValue.Create(integer);
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var real))
            return JsonValue.Create(real);
        return JsonValue.Create(text);
    }
}

/// <summary>A config file or override is invalid; the message names the key.</summary>
public sealed class ConfigException(string message, Exception? inner = null) : Exception(message, inner);
