namespace Distill.Mesh.Testing;

/// <summary>Locates <c>../shared/data</c> beside the checkout (where CI puts it).</summary>
public static class SharedData
{
    private static readonly Lazy<string> Root = new(FindRoot);

    /// <summary>The repository root (the folder holding Distill.Mesh.sln).</summary>
    public static string RepositoryRoot => FindRepositoryRoot();

    /// <summary>Absolute path of a file or folder under shared/data.</summary>
    public static string PathOf(params string[] parts) => Path.Combine([Root.Value, .. parts]);

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Distill.Mesh.sln")))
                return dir.FullName;
        }

        throw new DirectoryNotFoundException($"no Distill.Mesh.sln above {AppContext.BaseDirectory}");
    }

    private static string FindRoot()
    {
        var candidate = Path.GetFullPath(Path.Combine(FindRepositoryRoot(), "..", "shared", "data"));
        return Directory.Exists(candidate)
            ? candidate
            : throw new DirectoryNotFoundException($"shared test data not found at {candidate} (CI puts shared/ beside the checkout)");
    }
}
