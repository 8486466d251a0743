namespace Distill.Mesh.Cli.Display;

/// <summary>
/// Where a command shows the progress of its long phases: live bars on a terminal
/// (<see cref="LiveProgressDisplay"/>), a line per update in a log (<see cref="PlainProgressDisplay"/>).
/// <see cref="ProgressDisplays.For"/> picks one. Disposing it ends the display and leaves the terminal clean.
/// </summary>
internal interface IProgressDisplay : IDisposable
{
    /// <summary>Starts a phase.</summary>
    /// <param name="label">What the phase is ("push", "teacher", "shard 0"); empty for a command's only phase.</param>
    /// <param name="total">The count it ends at; null when unknown (a bar without an ETA).</param>
    /// <param name="unit">What it counts.</param>
    /// <param name="plainLines">How often a log gets a line (a terminal redraws on every update).</param>
    IProgressPhase Start(string label, double? total, ProgressUnit unit, PlainLines plainLines = PlainLines.EachUpdate);

    /// <summary>Messages and warnings: lines written here appear above the live bars, never through them.</summary>
    TextWriter Log { get; }
}
