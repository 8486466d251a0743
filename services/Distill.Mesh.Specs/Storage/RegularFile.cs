using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Distill.Mesh.Specs.Storage;

/// <summary>
/// Refuses paths that are not regular files before a reader opens them: opening a FIFO for reading
/// blocks until a writer appears (a shard named as a FIFO hung the loader), and sockets and pipes
/// cannot be mapped. The check opens the path non-blocking (O_NONBLOCK, through libc: .NET has
/// no such open) and asks whether it can seek.
/// </summary>
public static unsafe partial class RegularFile
{
    private const int LinuxReadNonBlocking = 0x800;
    private const int MacReadNonBlocking = 0x4;

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial nint RealPath(string path, nint resolved);

    /// <summary>
    /// The path with every symbolic link of every component resolved (libc realpath: .NET resolves
    /// only the last one), or null when it does not exist. On Windows: the full path.
    /// </summary>
    public static string? Resolve(string path)
    {
        if (OperatingSystem.IsWindows())
            return Path.Exists(path) ? Path.GetFullPath(path) : null;
        var resolved = RealPath(path, 0);
        if (resolved == 0)
            return null;
        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            NativeMemory.Free((void*)resolved);
        }
    }

    /// <summary>Throws <see cref="IOException"/> naming <paramref name="path"/> when it is a FIFO, socket or directory.</summary>
    public static void Require(string path)
    {
        if (Directory.Exists(path))
            throw new IOException($"'{path}' is a directory, not a file");
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return;
        var descriptor = Open(path, OperatingSystem.IsLinux() ? LinuxReadNonBlocking : MacReadNonBlocking);
        // A path that cannot be opened is left to the reader, which names the reason.
        if (descriptor < 0)
            return;
        using var handle = new SafeFileHandle(descriptor, ownsHandle: true);
        using var stream = new FileStream(handle, FileAccess.Read, bufferSize: 1);
        if (!stream.CanSeek)
            throw new IOException($"'{path}' is not a regular file (a FIFO, socket or pipe); refusing to read it");
    }
}
