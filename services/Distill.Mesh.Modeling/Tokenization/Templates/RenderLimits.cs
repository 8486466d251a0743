namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// Bounds on the work one rendering may do: templates come from files users bring, so a loop
/// over <c>range(10**9)</c> or a runaway macro must end with an error, not a hung process.
/// </summary>
public sealed record RenderLimits
{
    /// <summary>The default bounds: far above what any chat template needs for a long conversation.</summary>
    public static readonly RenderLimits Default = new();

    /// <summary>Most characters the rendered text (and any string the template builds) may have.</summary>
    public int MaxOutputChars { get; init; } = 16 * 1024 * 1024;

    /// <summary>Most loop iterations in one rendering, all loops together.</summary>
    public long MaxLoopIterations { get; init; } = 1_000_000;

    /// <summary>Deepest nesting of macro calls.</summary>
    public int MaxCallDepth { get; init; } = 64;

    /// <summary>Deepest nesting of blocks and expressions in the source (guards the parser's stack).</summary>
    public int MaxNesting { get; init; } = 200;

    /// <summary>Longest template source accepted, in characters.</summary>
    public int MaxSourceChars { get; init; } = 1024 * 1024;
}
