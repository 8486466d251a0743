namespace Distill.Mesh.Testing;

/// <summary>A fresh folder under the system temp directory, deleted on dispose.</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder()
        : this(System.IO.Path.GetTempPath())
    {
    }

    private TempFolder(string root)
    {
        Path = System.IO.Path.Combine(root, "distill-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    /// <summary>
    /// A folder on a memory-backed file system (/dev/shm) where there is one: for multi-GiB files,
    /// whose flush to a virtual disk would dominate a test's time. Falls back to the temp folder.
    /// </summary>
    public static TempFolder InMemory() =>
        Directory.Exists("/dev/shm") ? new TempFolder("/dev/shm") : new TempFolder();

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A memory-mapped file still open on some platforms; the OS temp cleaner gets it.
        }
    }
}
