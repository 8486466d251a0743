using System.Text;

namespace Distill.Mesh.Specs.Storage;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new one: the data
/// goes to a temporary file in the same folder, is flushed to disk, then renamed over the target.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes through <paramref name="write"/>; on any failure the target is untouched.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>Writes UTF-8 text atomically.</summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(text)));
}
