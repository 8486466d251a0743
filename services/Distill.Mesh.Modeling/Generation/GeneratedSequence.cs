namespace Distill.Mesh.Modeling.Generation;

/// <summary>Why a sequence stopped.</summary>
public enum StopReason
{
    /// <summary>It produced one of the stop tokens (included in <see cref="GeneratedSequence.Tokens"/>).</summary>
    StopToken,

    /// <summary>It reached the new-token limit.</summary>
    MaxNewTokens,
}

/// <summary>The new tokens generated for one prompt.</summary>
public sealed record GeneratedSequence(IReadOnlyList<int> Tokens, StopReason Reason);
