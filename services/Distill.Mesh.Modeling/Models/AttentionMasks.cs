using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Models;

/// <summary>
/// Builds additive attention masks [B, 1, T, past + T]: 0 where a query may attend, the dtype's
/// lowest finite value elsewhere. A finite value (not −inf) keeps fully masked rows — queries at
/// left-padding positions — finite instead of NaN; their outputs are never used.
/// </summary>
public static class AttentionMasks
{
    /// <summary>Whether an explicit mask is needed; otherwise SDPA's built-in causal path is exact.</summary>
    public static bool Needed(Tensor? paddingMask, long past, long length, int? window, Tensor? documentIds = null) =>
        documentIds is not null
        || (paddingMask is not null && !paddingMask.to_type(ScalarType.Bool).all().item<bool>())
        || (past > 0 && length > 1)
        || (window is { } w && past + length > w);

    /// <param name="paddingMask">[B, past + T], 1 for real tokens and 0 for padding; null if none.</param>
    /// <param name="batch">Batch size.</param>
    /// <param name="past">Cached positions before the queries.</param>
    /// <param name="length">Query positions.</param>
    /// <param name="window">Sliding window (a query sees the last <c>window</c> keys including itself), or null.</param>
    /// <param name="dtype">Element type of the attention scores.</param>
    /// <param name="device">Device of the scores.</param>
    /// <param name="documentIds">[B, T] for packed sequences: a token attends only within its own document.</param>
    public static Tensor Build(Tensor? paddingMask, long batch, long past, long length, int? window, ScalarType dtype, Device device, Tensor? documentIds = null)
    {
        using var scope = torch.NewDisposeScope();
        var total = past + length;
        var queries = torch.arange(past, total, device: device).unsqueeze(1);
        var keys = torch.arange(total, device: device).unsqueeze(0);
        var allowed = keys.le(queries);
        if (window is { } w)
            allowed = allowed.logical_and(queries - keys < w);
        var full = allowed.unsqueeze(0).unsqueeze(0).expand(batch, 1, length, total);
        if (paddingMask is not null)
        {
            if (paddingMask.shape[0] != batch || paddingMask.shape[1] != total)
                throw new ArgumentException($"attention mask is [{string.Join(", ", paddingMask.shape)}], expected [{batch}, {total}] (past + new positions)");
            full = full.logical_and(paddingMask.to_type(ScalarType.Bool).to(device).unsqueeze(1).unsqueeze(1));
        }

        if (documentIds is not null)
        {
            if (past > 0)
                throw new ArgumentException("packed sequences (document ids) cannot be decoded with a KV cache");
            var documents = documentIds.to(device);
            full = full.logical_and(documents.unsqueeze(2).eq(documents.unsqueeze(1)).unsqueeze(1));
        }

        var lowest = torch.finfo(dtype).min;
        var mask = torch.zeros(batch, 1, length, total, dtype: dtype, device: device)
            .masked_fill(full.logical_not(), lowest);
        return mask.MoveToOuterDisposeScope();
    }
}
