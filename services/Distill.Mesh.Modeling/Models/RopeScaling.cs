using System.Text.Json;
using System.Text.Json.Serialization;

namespace Distill.Mesh.Modeling.Models;

/// <summary>HF <c>rope_scaling</c>: "linear" and Llama 3's "llama3" frequency-dependent scaling.</summary>
public sealed class RopeScaling
{
    /// <summary>The supported <c>rope_type</c> values.</summary>
    public static readonly string[] SupportedTypes = ["default", "linear", "llama3"];

    [JsonPropertyName("rope_type")]
    public string? RopeType { get; set; }

    /// <summary>Older configs spell <c>rope_type</c> as <c>type</c>.</summary>
    [JsonPropertyName("type")]
    public string? Type { get; set; }

    [JsonPropertyName("factor")]
    public double Factor { get; set; } = 1.0;

    [JsonPropertyName("low_freq_factor")]
    public double? LowFreqFactor { get; set; }

    [JsonPropertyName("high_freq_factor")]
    public double? HighFreqFactor { get; set; }

    [JsonPropertyName("original_max_position_embeddings")]
    public int? OriginalMaxPositionEmbeddings { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }

    /// <summary>The effective type.</summary>
    [JsonIgnore]
    public string Kind => RopeType ?? Type ?? "default";
}
