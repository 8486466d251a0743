using System.Text.Json.Serialization;

namespace Distill.Mesh.Modeling.Adapters;

/// <summary>What <see cref="MergedModelExporter"/> wrote.</summary>
/// <param name="Destination">The model folder (full path).</param>
/// <param name="AdapterFolder">The adapter that was merged.</param>
/// <param name="BaseFolder">Its base model.</param>
/// <param name="DType">Element type of the written weights (float32, bfloat16, float16).</param>
/// <param name="MergedModules">Module paths whose weight took an update.</param>
/// <param name="WeightFiles">The safetensors files written (one, or the shards).</param>
/// <param name="WeightBytes">Bytes of tensor data.</param>
/// <param name="CopiedFiles">Tokenizer and generation files, each with the folder it came from.</param>
/// <param name="Check">The logits comparison; null with the check off.</param>
/// <param name="Seconds">Wall time of the export.</param>
public sealed record MergedExportReport(
    string Destination,
    string AdapterFolder,
    string BaseFolder,
    [property: JsonPropertyName("dtype")] string DType,
    IReadOnlyList<string> MergedModules,
    IReadOnlyList<string> WeightFiles,
    long WeightBytes,
    IReadOnlyList<CopiedFile> CopiedFiles,
    MergeCheck? Check,
    double Seconds);
