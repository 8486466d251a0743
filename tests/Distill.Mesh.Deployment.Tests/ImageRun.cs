using Distill.Mesh.Testing;

namespace Distill.Mesh.Deployment.Tests;

/// <summary>
/// Runs a published service as its image would: the target's entrypoint, working directory and
/// environment, with the image's volume paths (/var/lib/distill, /models) mapped into a temp folder.
/// </summary>
internal static class ImageRun
{
    public static ServiceProcess Start(PublishedServices published, Dockerfile docker, string service, TempFolder volumes, IReadOnlyDictionary<string, string>? extra = null)
    {
        var environment = docker.EnvironmentOf(service);
        foreach (var (key, value) in environment.ToList())
        {
            if (value.StartsWith("/var/lib/distill", StringComparison.Ordinal))
                environment[key] = volumes.Combine("var-lib-distill") + value["/var/lib/distill".Length..];
            else if (value.StartsWith("/models", StringComparison.Ordinal))
                environment[key] = volumes.Combine("models") + value["/models".Length..];
        }

        if (service == "teacher" && !Directory.Exists(environment["Teacher__Model"]))
        {
            using var model = TinyModels.Create("llama", seed: 41);
            TinyModels.SaveWithByteTokenizer(model, environment["Teacher__Model"]);
        }

        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
            environment[key] = value;
        Assert.Equal("/app", docker.WorkDirOf(service));
        return ServiceProcess.Start(published.Folder(service), docker[service].EntryPoint!, environment);
    }
}
