namespace Distill.Mesh.Cli.Display;

/// <summary>One phase of a command's work (a training run, a transfer, an extraction shard) on an <see cref="IProgressDisplay"/>.</summary>
internal interface IProgressPhase
{
    /// <summary>Updates the phase.</summary>
    /// <param name="done">The count so far.</param>
    /// <param name="detail">What to show next to it (the loss, the tensor just done).</param>
    /// <param name="unitDuration">The measured time of one unit (a training step's own duration); without it the rate comes from the time between updates.</param>
    void Set(double done, string? detail = null, TimeSpan? unitDuration = null);

    /// <summary>A line that stays (an evaluation, a resume): kept in the log above a live display, printed as it is in a plain one.</summary>
    void Note(string message);

    /// <summary>The phase finished; <paramref name="summary"/> (e.g. "1.2 MB in 0.4 s") is shown when given.</summary>
    void Complete(string? summary = null);

    /// <summary>The phase stopped short.</summary>
    void Fail(string reason);
}
