using System.Text.Json;
using System.Text.Json.Serialization;
using Distill.Mesh.Modeling.Models;

namespace Distill.Mesh.Modeling.Generation;

/// <summary>HF <c>generation_config.json</c>: the defaults a model ships for generation.</summary>
public sealed class GenerationConfig
{
    [JsonPropertyName("bos_token_id")]
    public int? BosTokenId { get; set; }

    [JsonPropertyName("eos_token_id")]
    [JsonConverter(typeof(IntOrIntArrayConverter))]
    public int[]? EosTokenId { get; set; }

    [JsonPropertyName("pad_token_id")]
    public int? PadTokenId { get; set; }

    [JsonPropertyName("do_sample")]
    public bool? DoSample { get; set; }

    [JsonPropertyName("temperature")]
    public double? Temperature { get; set; }

    [JsonPropertyName("top_p")]
    public double? TopP { get; set; }

    [JsonPropertyName("top_k")]
    public int? TopK { get; set; }

    /// <summary>Reads the file from a model folder; an empty config when there is none.</summary>
    public static GenerationConfig Load(string folder)
    {
        var path = Path.Combine(folder, "generation_config.json");
        if (!File.Exists(path))
            return new GenerationConfig();
        try
        {
            return JsonSerializer.Deserialize<GenerationConfig>(File.ReadAllText(path)) ?? new GenerationConfig();
        }
        catch (JsonException e)
        {
            throw new ModelConfigException($"{path}: invalid JSON ({e.Message})", e);
        }
    }

    /// <summary>Stop tokens: generation_config's EOS ids, else config.json's.</summary>
    public IReadOnlySet<int> StopTokens(DecoderConfig model) =>
        (EosTokenId ?? model.EosTokenId ?? []).ToHashSet();
}
