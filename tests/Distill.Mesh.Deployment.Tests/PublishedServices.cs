using System.Diagnostics;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Deployment.Tests;

/// <summary>
/// The services as build/publish.sh publishes them (what the images copy): the folder CI published
/// into (DISTILL_PUBLISH_DIR), or a fresh publish into artifacts/publish when the tests run alone.
/// </summary>
public sealed class PublishedServices
{
    public static readonly string[] Names = ["controller", "teacher", "trainer", "registry", "extractor"];

    public PublishedServices()
    {
        var given = Environment.GetEnvironmentVariable("DISTILL_PUBLISH_DIR");
        Root = string.IsNullOrEmpty(given) ? Path.Combine(SharedData.RepositoryRoot, "artifacts", "publish") : Path.GetFullPath(given);
        if (!string.IsNullOrEmpty(given))
            return;
        var publish = Process.Start(new ProcessStartInfo("bash", [Path.Combine(SharedData.RepositoryRoot, "build", "publish.sh"), Root])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = publish.StandardOutput.ReadToEndAsync();
        var error = publish.StandardError.ReadToEnd();
        if (!publish.WaitForExit(TimeSpan.FromMinutes(10)))
            publish.Kill(entireProcessTree: true);
        Assert.True(publish.ExitCode == 0, $"build/publish.sh failed ({publish.ExitCode}):\n{output.Result}\n{error}");
    }

    /// <summary>One folder per service.</summary>
    public string Root { get; }

    public string Folder(string service) => Path.Combine(Root, service);
}

[CollectionDefinition(Name)]
public sealed class PublishedCollection : ICollectionFixture<PublishedServices>
{
    public const string Name = "published services";
}
