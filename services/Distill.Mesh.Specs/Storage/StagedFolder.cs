namespace Distill.Mesh.Specs.Storage;

/// <summary>
/// A folder written in full under a temporary name beside its destination and renamed into place
/// by <see cref="Commit"/>: the destination shows what it held before or the complete new
/// content, never a part. Disposed uncommitted, the temporary folder is removed.
/// </summary>
public sealed class StagedFolder : IDisposable
{
    private bool _committed;

    private StagedFolder(string target, string staging)
    {
        Target = target;
        Path = staging;
    }

    /// <summary>The destination (full path).</summary>
    public string Target { get; }

    /// <summary>The temporary folder to write into (same parent as <see cref="Target"/>, so the rename stays on one file system).</summary>
    public string Path { get; }

    /// <summary>Whether <paramref name="folder"/> exists and holds anything.</summary>
    public static bool IsNonEmpty(string folder) => Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any();

    /// <summary>
    /// Starts a folder for <paramref name="target"/>. An existing non-empty destination is refused
    /// unless <paramref name="replace"/>; a file there always is.
    /// </summary>
    /// <param name="target">The destination folder.</param>
    /// <param name="replace">Replace a non-empty destination at <see cref="Commit"/>.</param>
    /// <param name="purpose">What is written (a word for the temporary folder's name, e.g. "export").</param>
    public static StagedFolder Create(string target, bool replace, string purpose)
    {
        var full = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(target));
        var parent = System.IO.Path.GetDirectoryName(full) ?? throw new IOException($"'{target}' is a root folder; give a folder below it");
        if (File.Exists(full))
            throw new IOException($"'{target}' is a file, not a folder");
        if (!replace && IsNonEmpty(full))
            throw new IOException($"'{target}' exists and is not empty (replace it with --force)");
        Directory.CreateDirectory(parent);
        var staging = System.IO.Path.Combine(parent, $".{System.IO.Path.GetFileName(full)}.{purpose}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        return new StagedFolder(full, staging);
    }

    /// <summary>Renames the written folder to <see cref="Target"/>, replacing what was there.</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_committed, this);
        if (!Directory.Exists(Target))
        {
            Directory.Move(Path, Target);
            _committed = true;
            return;
        }

        // The old content steps aside under a temporary name first, and comes back if the rename fails.
        var old = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Target)!, $".{System.IO.Path.GetFileName(Target)}.old-{Guid.NewGuid():N}");
        Directory.Move(Target, old);
        try
        {
            Directory.Move(Path, Target);
        }
        catch
        {
            Directory.Move(old, Target);
            throw;
        }

        _committed = true;
        Directory.Delete(old, recursive: true);
    }

    public void Dispose()
    {
        if (!_committed && Directory.Exists(Path))
            Directory.Delete(Path, recursive: true);
    }
}
