using System.Text.Json.Nodes;
using Distill.Mesh.Contracts.Registry.V1;

namespace Distill.Mesh.Registry.Storage;

/// <summary>
/// Lineage as stored and handed out: absolute paths of the machine that pushed (teachers, base
/// model, every path in the resolved config) become "…/" and their last folder name, so List and
/// Pull never reveal a server's layout. The fingerprints still name the models exactly.
/// </summary>
public static class LineagePaths
{
    public const string Elided = "…/";

    public static void Redact(Lineage lineage)
    {
        for (var i = 0; i < lineage.Teachers.Count; i++)
            lineage.Teachers[i] = Redact(lineage.Teachers[i]);
        lineage.BaseModel = Redact(lineage.BaseModel);
        if (string.IsNullOrEmpty(lineage.ConfigJson))
            return;
        JsonNode? config;
        try
        {
            config = JsonNode.Parse(lineage.ConfigJson);
        }
        catch (System.Text.Json.JsonException)
        {
            throw new ArgumentException("lineage.config_json is not valid JSON");
        }

        lineage.ConfigJson = Redact(config)?.ToJsonString() ?? "";
    }

    /// <summary>An absolute path (POSIX or Windows) as "…/name"; anything else as it is.</summary>
    public static string Redact(string value)
    {
        var absolute = value.Length > 1 && (value[0] == '/' || (value.Length > 2 && char.IsAsciiLetter(value[0]) && value[1] == ':' && value[2] is '\\' or '/'));
        if (!absolute)
            return value;
        var trimmed = value.TrimEnd('/', '\\');
        return Elided + trimmed[(trimmed.LastIndexOfAny(['/', '\\']) + 1)..];
    }

    private static JsonNode? Redact(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, child) in obj.ToList())
                {
                    if (child is JsonValue)
                        obj[key] = Redact(child);
                    else
                        Redact(child);
                }

                return obj;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    if (array[i] is JsonValue)
                        array[i] = Redact(array[i]);
                    else
                        Redact(array[i]);
                }

                return array;
            case JsonValue value when value.TryGetValue<string>(out var text):
                return JsonValue.Create(Redact(text));
            case JsonValue value:
                // A number or a boolean: a copy, as the original still has its parent.
                return value.DeepClone();
            default:
                return node;
        }
    }
}
