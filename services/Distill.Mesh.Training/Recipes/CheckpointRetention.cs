using Distill.Mesh.Specs.Configuration;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// Which checkpoints stay after a save: the newest <see cref="Keep"/> (0: all), the best by eval
/// loss when <see cref="KeepBest"/>, and always the one just written (the newest, which a resume
/// restores). A deleted checkpoint is first renamed to a dot-name, so a crash mid-delete never
/// leaves a partial folder that looks complete.
/// </summary>
public sealed record CheckpointRetention(int Keep, bool KeepBest)
{
    /// <summary>Every checkpoint stays.</summary>
    public static readonly CheckpointRetention All = new(0, false);

    /// <summary>The retention a run's training section asks for.</summary>
    public static CheckpointRetention For(TrainingConfig training) => new(training.KeepCheckpoints, training.KeepBest);

    /// <summary>Deletes the checkpoints under <paramref name="root"/> this retention does not keep (never <paramref name="justWritten"/>).</summary>
    public void Prune(string root, string justWritten)
    {
        foreach (var leftover in Directory.GetDirectories(root, $".{TrainingCheckpoint.Prefix}*.deleting"))
            Directory.Delete(leftover, recursive: true);
        var all = TrainingCheckpoint.All(Path.GetDirectoryName(root)!);
        var kept = new HashSet<string>(Keep == 0 ? all : all.TakeLast(Keep), StringComparer.Ordinal) { justWritten };
        if (all.Count > 0)
            kept.Add(all[^1]);
        if (KeepBest && Best(all) is { } best)
            kept.Add(best);
        foreach (var folder in all.Where(f => !kept.Contains(f)))
        {
            var doomed = Path.Combine(root, $".{Path.GetFileName(folder)}.{Guid.NewGuid():N}.deleting");
            Directory.Move(folder, doomed);
            Directory.Delete(doomed, recursive: true);
        }
    }

    /// <summary>The checkpoint with the lowest recorded eval loss (the earliest of equals), or null when none was evaluated.</summary>
    public static string? Best(IEnumerable<string> checkpoints) =>
        checkpoints.Select(c => (Folder: c, Loss: TrainingCheckpoint.EvalLoss(c)))
            .Where(c => c.Loss is { } loss && double.IsFinite(loss))
            .OrderBy(c => c.Loss).Select(c => c.Folder).FirstOrDefault();
}
