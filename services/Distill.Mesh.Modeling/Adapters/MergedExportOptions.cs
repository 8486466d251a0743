using Distill.Mesh.Modeling.Checkpoints;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Adapters;

/// <summary>What <see cref="MergedModelExporter"/> merges and how it writes the result.</summary>
public sealed record MergedExportOptions
{
    /// <summary>The adapter and its base model.</summary>
    public required AdapterSource Source { get; init; }

    /// <summary>The HF model folder to write (must not exist or be empty unless <see cref="Replace"/>).</summary>
    public required string Destination { get; init; }

    /// <summary>float32, bfloat16 or float16; null: the base's torch_dtype (else the dtype its weights are stored in).</summary>
    public ScalarType? DType { get; init; }

    /// <summary>Shards above this many bytes of tensor data are split, with model.safetensors.index.json.</summary>
    public long MaxShardBytes { get; init; } = SafetensorsCheckpoint.DefaultMaxShardBytes;

    /// <summary>Compare the merged model's logits with the adapted model's before the folder is put in place.</summary>
    public bool Check { get; init; } = true;

    /// <summary>Replace a destination that holds files.</summary>
    public bool Replace { get; init; }
}
