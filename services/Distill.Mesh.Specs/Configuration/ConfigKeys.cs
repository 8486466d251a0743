using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Distill.Mesh.Specs.Configuration;

/// <summary>One recipe key: its dotted path, type, default and meaning.</summary>
public sealed record ConfigKey(string Key, string Type, string Default, string Meaning);

/// <summary>
/// The reference of every recipe key, generated from the config types (their properties, the
/// defaults of a fresh instance, and the XML documentation the build writes beside the assembly),
/// so it cannot drift from what the loader accepts.
/// </summary>
public static partial class ConfigKeys
{
    /// <summary>Every key of <see cref="TrainConfig"/>, sections first-level in declaration order; list elements as <c>teachers[].model</c>.</summary>
    public static IReadOnlyList<ConfigKey> All()
    {
        var docs = Documentation(typeof(TrainConfig).Assembly);
        var keys = new List<ConfigKey>();
        Walk(typeof(TrainConfig), "", docs, keys);
        return keys;
    }

    /// <summary>Types that are sections (their keys are listed under a prefix), not values.</summary>
    public static bool IsSection(Type type) => type.IsClass && type != typeof(string) && type.Namespace == typeof(TrainConfig).Namespace;

    private static void Walk(Type type, string prefix, IReadOnlyDictionary<string, string> docs, List<ConfigKey> keys)
    {
        var defaults = Activator.CreateInstance(type);
        foreach (var (name, property) in ConfigBinder.Properties(type))
        {
            var key = prefix + name;
            var meaning = docs.GetValueOrDefault($"P:{property.DeclaringType!.FullName}.{property.Name}") ?? "";
            var valueType = property.PropertyType;
            if (IsSection(valueType))
            {
                keys.Add(new ConfigKey(key, property.GetValue(defaults) is null ? "section (optional)" : "section", "", meaning));
                Walk(valueType, key + ".", docs, keys);
            }
            else if (ElementOf(valueType) is { } element && IsSection(element))
            {
                keys.Add(new ConfigKey(key, "list of sections", "[]", meaning));
                Walk(element, key + "[].", docs, keys);
            }
            else
            {
                keys.Add(new ConfigKey(key, TypeName(valueType), Show(property.GetValue(defaults)), meaning));
            }
        }
    }

    private static Type? ElementOf(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>) ? type.GetGenericArguments()[0] : null;

    private static string TypeName(Type type)
    {
        if (Nullable.GetUnderlyingType(type) is { } inner)
            return TypeName(inner) + " or null";
        if (ElementOf(type) is { } element)
            return $"list of {TypeName(element)}s";
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>))
            return $"mapping of {TypeName(type.GetGenericArguments()[0])}s to {TypeName(type.GetGenericArguments()[1])}s";
        return type == typeof(string) ? "string"
            : type == typeof(int) || type == typeof(long) ? "integer"
            : type == typeof(double) || type == typeof(float) ? "number"
            : type == typeof(bool) ? "boolean"
            : type.Name;
    }

    private static string Show(object? value) => value switch
    {
        null => "null",
        string text => text.Length == 0 ? "\"\"" : text,
        bool flag => flag ? "true" : "false",
        double number => ConfigBinder.Number(number),
        IDictionary mapping => $"{{{string.Join(", ", mapping.Keys.Cast<object>().Select(k => $"{Show(k)}: {Show(mapping[k])}"))}}}",
        IEnumerable list => $"[{string.Join(", ", list.Cast<object?>().Select(Show))}]",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>Member summaries from the documentation file beside <paramref name="assembly"/>, as plain one-line text.</summary>
    private static Dictionary<string, string> Documentation(Assembly assembly)
    {
        var path = Path.ChangeExtension(assembly.Location, ".xml");
        if (!File.Exists(path))
            throw new FileNotFoundException($"the config key reference is read from {path}, which is missing (it is written by the build)", path);
        return XDocument.Load(path).Descendants("member")
            .Where(m => m.Element("summary") is not null)
            .ToDictionary(m => (string)m.Attribute("name")!, m => Plain(m.Element("summary")!), StringComparer.Ordinal);
    }

    private static string Plain(XElement summary)
    {
        var text = string.Concat(summary.Nodes().Select(node => node switch
        {
            XText t => t.Value,
            XElement { Name.LocalName: "see" } see => Cref((string?)see.Attribute("cref") ?? (string?)see.Attribute("langword") ?? ""),
            XElement e => e.Value,
            _ => "",
        }));
        return Spaces().Replace(text, " ").Trim();
    }

    /// <summary>A cref as the key it names: "P:...TeacherConfig.Endpoint" → endpoint.</summary>
    private static string Cref(string cref) => cref.Length == 0 ? "" : System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(cref[(cref.LastIndexOf('.') + 1)..]);

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}
