using System.Collections;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Distill.Mesh.Controller.Kubernetes.Entities;
using k8s;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Resources;

/// <summary>
/// The DistillationRun CRD, generated from the C# entity types (one source of truth): a structural
/// OpenAPI v3 schema from their properties (types, [Required], [Range], [AllowedValues],
/// [RegularExpression], [Description]; the run spec itself is free-form and validated by the
/// controller), the status subresource and the printer columns.
/// </summary>
public static class CrdBuilder
{
    public static V1CustomResourceDefinition Build() => new()
    {
        ApiVersion = "apiextensions.k8s.io/v1",
        Kind = "CustomResourceDefinition",
        Metadata = new V1ObjectMeta { Name = $"{DistillationRun.Plural}.{DistillationRun.Group}", Labels = new Dictionary<string, string> { ["app.kubernetes.io/part-of"] = "distill-mesh" } },
        Spec = new V1CustomResourceDefinitionSpec
        {
            Group = DistillationRun.Group,
            Scope = "Namespaced",
            Names = new V1CustomResourceDefinitionNames
            {
                Kind = DistillationRun.KindName,
                ListKind = DistillationRun.KindName + "List",
                Plural = DistillationRun.Plural,
                Singular = DistillationRun.Singular,
                ShortNames = [DistillationRun.ShortName],
                Categories = ["distill"],
            },
            Versions =
            [
                new V1CustomResourceDefinitionVersion
                {
                    Name = DistillationRun.Version,
                    Served = true,
                    Storage = true,
                    Subresources = new V1CustomResourceSubresources { Status = new object() },
                    AdditionalPrinterColumns =
                    [
                        Column("Phase", ".status.phase"),
                        Column("Stage", ".status.currentStage"),
                        Column("Progress", ".status.progress.summary"),
                        Column("Teacher", ".status.teacher"),
                        new V1CustomResourceColumnDefinition { Name = "Age", Type = "date", JsonPath = ".metadata.creationTimestamp" },
                    ],
                    Schema = new V1CustomResourceValidation
                    {
                        OpenAPIV3Schema = new V1JSONSchemaProps
                        {
                            Type = "object",
                            Description = typeof(DistillationRun).GetCustomAttribute<DescriptionAttribute>()?.Description,
                            Required = ["spec"],
                            Properties = new Dictionary<string, V1JSONSchemaProps>
                            {
                                ["apiVersion"] = new() { Type = "string" },
                                ["kind"] = new() { Type = "string" },
                                ["metadata"] = new() { Type = "object" },
                                ["spec"] = Schema(typeof(DistillationRunSpec)),
                                ["status"] = Schema(typeof(DistillationRunStatus)),
                            },
                        },
                    },
                },
            ],
        },
    };

    /// <summary>The CRD as YAML (what charts/distill-mesh-crds ships).</summary>
    public static string Yaml() => "# Generated from the DistillationRun C# types (`distill crd`); do not edit by hand.\n" + KubernetesYaml.Serialize(Build());

    private static V1CustomResourceColumnDefinition Column(string name, string path) => new() { Name = name, Type = "string", JsonPath = path };

    /// <summary>The schema of an object type: its JSON properties, in declaration order.</summary>
    private static V1JSONSchemaProps Schema(Type type)
    {
        var properties = new Dictionary<string, V1JSONSchemaProps>();
        var required = new List<string>();
        var context = new NullabilityInfoContext();
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.GetCustomAttribute<JsonIgnoreAttribute>() is null))
        {
            var name = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonCamel(property.Name);
            var schema = Schema(property.PropertyType, property);
            if (context.Create(property).WriteState == NullabilityState.Nullable || Nullable.GetUnderlyingType(property.PropertyType) is not null)
                schema.Nullable = true;
            properties[name] = schema;
            if (property.GetCustomAttribute<RequiredAttribute>() is not null)
                required.Add(name);
        }

        return new V1JSONSchemaProps
        {
            Type = "object",
            Description = type.GetCustomAttribute<DescriptionAttribute>()?.Description,
            Properties = properties,
            Required = required.Count > 0 ? required : null,
        };
    }

    private static V1JSONSchemaProps Schema(Type type, PropertyInfo? property)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        var schema = type switch
        {
            _ when type == typeof(string) => new V1JSONSchemaProps { Type = "string" },
            _ when type == typeof(bool) => new V1JSONSchemaProps { Type = "boolean" },
            _ when type == typeof(int) => new V1JSONSchemaProps { Type = "integer", Format = "int32" },
            _ when type == typeof(long) => new V1JSONSchemaProps { Type = "integer", Format = "int64" },
            _ when type == typeof(double) => new V1JSONSchemaProps { Type = "number", Format = "double" },
            _ when type == typeof(DateTime) => new V1JSONSchemaProps { Type = "string", Format = "date-time" },
            _ when type == typeof(JsonObject) => new V1JSONSchemaProps { Type = "object", XKubernetesPreserveUnknownFields = true },
            _ when type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>) =>
                new V1JSONSchemaProps { Type = "object", AdditionalProperties = Schema(type.GetGenericArguments()[1], null) },
            _ when typeof(IEnumerable).IsAssignableFrom(type) && type.IsGenericType =>
                new V1JSONSchemaProps { Type = "array", Items = Schema(type.GetGenericArguments()[0], null) },
            _ => Schema(type),
        };
        if (property is null)
            return schema;
        schema.Description = property.GetCustomAttribute<DescriptionAttribute>()?.Description ?? schema.Description;
        if (property.GetCustomAttribute<RangeAttribute>() is { } range)
        {
            schema.Minimum = Convert.ToDouble(range.Minimum, System.Globalization.CultureInfo.InvariantCulture);
            var maximum = Convert.ToDouble(range.Maximum, System.Globalization.CultureInfo.InvariantCulture);
            schema.Maximum = maximum >= long.MaxValue ? null : maximum;
        }

        if (property.GetCustomAttribute<AllowedValuesAttribute>() is { } allowed)
            schema.EnumProperty = [.. allowed.Values.Cast<object>()];
        if (property.GetCustomAttribute<RegularExpressionAttribute>() is { } pattern)
            schema.Pattern = pattern.Pattern;
        return schema;
    }

    private static string JsonCamel(string name) => char.ToLowerInvariant(name[0]) + name[1..];
}
