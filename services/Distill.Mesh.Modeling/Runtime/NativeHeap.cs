using System.Runtime.InteropServices;

namespace Distill.Mesh.Modeling.Runtime;

/// <summary>
/// How the native heap (where torch's CPU tensors live) treats freed memory. glibc's malloc hands
/// every freed block above its mmap threshold back to the kernel, so a training step's activations
/// and gradients come back next step as fresh pages the kernel must fault in and zero (a quarter
/// of a CPU step's samples were page zeroing). Raising the threshold to its maximum (32 MiB) and
/// never trimming keeps such blocks in the heap for reuse, as PyTorch's caching allocator does on
/// CUDA: the process keeps its peak memory instead of returning it.
/// </summary>
public static partial class NativeHeap
{
    private const int TrimThreshold = -1;
    private const int MmapThreshold = -3;
    private const int MaxMmapThreshold = 32 << 20;

    private static readonly Lazy<bool> Applied = new(Apply);

    /// <summary>
    /// Keeps freed native memory for reuse (once per process). Not applied off Linux/glibc, when
    /// the user tunes malloc already (GLIBC_TUNABLES, MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_),
    /// or with DISTILL_NATIVE_HEAP=release.
    /// </summary>
    /// <returns>Whether the heap now keeps freed memory.</returns>
    public static bool KeepFreedMemory() => Applied.Value;

    private static bool Apply()
    {
        if (!OperatingSystem.IsLinux()
            || string.Equals(Environment.GetEnvironmentVariable("DISTILL_NATIVE_HEAP"), "release", StringComparison.OrdinalIgnoreCase)
            || new[] { "GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_" }.Any(v => Environment.GetEnvironmentVariable(v) is not null))
            return false;
        try
        {
            return Mallopt(MmapThreshold, MaxMmapThreshold) == 1 && Mallopt(TrimThreshold, int.MaxValue) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl has no mallopt): its allocator stays as it is.
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int Mallopt(int parameter, int value);
}
