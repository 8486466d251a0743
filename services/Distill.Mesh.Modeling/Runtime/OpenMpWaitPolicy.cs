using System.Runtime.InteropServices;

namespace Distill.Mesh.Modeling.Runtime;

/// <summary>
/// How libtorch's OpenMP threads wait between parallel regions. By default libgomp spins for a
/// while before sleeping; where the cores are shared (CI runners, a box running several jobs) the
/// spinning threads take the time slices the working ones need: on a 2-core machine shared with
/// other builds, perf showed 56% of a KD step's CPU samples in libgomp's spin loop (default
/// policy), and passive waiting made the step 3–5× faster than spinning (ACTIVE). libgomp reads its settings once, when libtorch loads, and
/// .NET's <see cref="Environment.SetEnvironmentVariable(string, string)"/> does not reach the
/// native environment on Unix, so this sets it through libc before the first tensor exists.
/// </summary>
public static partial class OpenMpWaitPolicy
{
    /// <summary>Sets <c>OMP_WAIT_POLICY=PASSIVE</c> unless the user chose a policy or spin count; call before any torch use.</summary>
    /// <returns>Whether the policy was set here.</returns>
    public static bool PreferPassive()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null || Environment.GetEnvironmentVariable("GOMP_SPINCOUNT") is not null)
            return false;
        return SetEnvironment("OMP_WAIT_POLICY", "PASSIVE", 1) == 0;
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnvironment(string name, string value, int overwrite);
}
