using System.Security.Cryptography;
using Distill.Mesh.Contracts.Registry.V1;

namespace Distill.Mesh.Registry.Storage;

/// <summary>
/// One push in progress: the files arrive in manifest order into a private folder under
/// <c>uploads/</c>, each checked against its declared size and SHA-256 when it ends. Nothing of
/// it is visible until <see cref="ArtifactStore.Commit"/>; disposing it without a commit deletes it.
/// </summary>
public sealed class ArtifactUpload : IDisposable
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private FileStream? _stream;
    private int _current;
    private long _written;

    internal ArtifactUpload(Manifest manifest, string folder)
    {
        Manifest = manifest;
        Folder = folder;
        Directory.CreateDirectory(Path.Combine(folder, "tree"));
    }

    public Manifest Manifest { get; }

    /// <summary>The upload's private folder; <c>tree/</c> holds the files at their manifest paths.</summary>
    internal string Folder { get; }

    /// <summary>The uploaded artifact laid out as a folder.</summary>
    internal string Tree => Path.Combine(Folder, "tree");

    internal bool Completed { get; private set; }

    /// <summary>Appends a chunk of file <paramref name="fileIndex"/> at <paramref name="offset"/> (files in order, chunks contiguous).</summary>
    public void Write(int fileIndex, long offset, ReadOnlySpan<byte> data)
    {
        if (Completed)
            throw new InvalidOperationException("the upload is already complete");
        if (fileIndex < _current || fileIndex >= Manifest.Files.Count)
            throw new ArgumentException($"chunk for file {fileIndex}: files must arrive in manifest order (current {_current} of {Manifest.Files.Count})");
        while (_current < fileIndex)
            FinishCurrent();
        var entry = Manifest.Files[_current];
        if (offset != _written)
            throw new ArgumentException($"chunk of '{entry.Path}' at offset {offset}: expected {_written} (chunks must be contiguous)");
        if (_written + data.Length > entry.Size)
            throw new ArtifactRejectedException($"'{entry.Path}' is longer than the {entry.Size} bytes its manifest declares");
        _stream ??= Open(entry.Path);
        _stream.Write(data);
        _hash.AppendData(data);
        _written += data.Length;
    }

    /// <summary>Checks that every file arrived whole.</summary>
    internal void Complete()
    {
        while (_current < Manifest.Files.Count)
            FinishCurrent();
        Completed = true;
    }

    private FileStream Open(string path)
    {
        var full = Path.Combine(Tree, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        return new FileStream(full, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
    }

    private void FinishCurrent()
    {
        var entry = Manifest.Files[_current];
        _stream ??= Open(entry.Path);
        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        _stream = null;
        var sha = Convert.ToHexStringLower(_hash.GetHashAndReset());
        if (_written != entry.Size)
            throw new ArtifactRejectedException($"'{entry.Path}' ended after {_written} bytes; its manifest declares {entry.Size}");
        if (sha != entry.Sha256)
            throw new ArtifactRejectedException($"'{entry.Path}' has SHA-256 {sha}; its manifest declares {entry.Sha256}");
        _current++;
        _written = 0;
    }

    public void Dispose()
    {
        _stream?.Dispose();
        _hash.Dispose();
        try
        {
            if (Directory.Exists(Folder))
                Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // Swept at the next start.
        }
    }
}
