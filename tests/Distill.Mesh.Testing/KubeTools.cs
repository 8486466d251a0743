using System.Diagnostics;

namespace Distill.Mesh.Testing;

/// <summary>The result of a tool run.</summary>
public sealed record ToolResult(int ExitCode, string Output, string Error)
{
    /// <summary>Throws (with the tool's own words) unless it exited 0.</summary>
    public ToolResult EnsureSuccess(string what) =>
        ExitCode == 0 ? this : throw new InvalidOperationException($"{what} exited {ExitCode}:\n{Error}\n{Output}");
}

/// <summary>
/// helm, kubectl and the manifest validator (build/manifests/validate.mjs), as scripts/setup.sh
/// installs them (helm and kubectl in .tools/, the validator's node modules under build/manifests);
/// DISTILL_HELM / DISTILL_KUBECTL point elsewhere.
/// </summary>
public static class KubeTools
{
    private static readonly string Scratch = Path.Combine(Path.GetTempPath(), "distill-tests", "helm-home");

    public static string Helm => Require(Environment.GetEnvironmentVariable("DISTILL_HELM") ?? Path.Combine(SharedData.RepositoryRoot, ".tools", "helm", "helm"));

    public static string Kubectl => Require(Environment.GetEnvironmentVariable("DISTILL_KUBECTL") ?? Path.Combine(SharedData.RepositoryRoot, ".tools", "kubectl", "kubectl"));

    public static string Chart(string name) => Path.Combine(SharedData.RepositoryRoot, "charts", name);

    public static string Crd => Path.Combine(SharedData.RepositoryRoot, "charts", "distill-mesh-crds", "templates", "distillationrun-crd.yaml");

    private static string Require(string path) => File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing: run scripts/setup.sh (it unpacks helm and kubectl into .tools/)");

    /// <summary>Runs helm with its cache and config in a scratch folder (never the user's).</summary>
    public static Task<ToolResult> HelmAsync(params string[] args) => RunAsync(Helm, args, null, new Dictionary<string, string>
    {
        ["HELM_CACHE_HOME"] = Path.Combine(Scratch, "cache"),
        ["HELM_CONFIG_HOME"] = Path.Combine(Scratch, "config"),
        ["HELM_DATA_HOME"] = Path.Combine(Scratch, "data"),
    });

    /// <summary>`helm template` of a chart with --set values; throws with helm's message when it refuses.</summary>
    public static async Task<string> TemplateAsync(string chart, IEnumerable<string> sets, params string[] extra)
    {
        var args = new List<string> { "template", "distill-mesh", Chart(chart), "--namespace", "ml" };
        foreach (var set in sets)
            args.AddRange(["--set", set]);
        args.AddRange(extra);
        return (await HelmAsync([.. args])).EnsureSuccess($"helm template {chart} {string.Join(" ", sets)}").Output;
    }

    public static Task<ToolResult> KubectlAsync(params string[] args) => RunAsync(Kubectl, args, null, null);

    /// <summary>Validates manifests against the Kubernetes OpenAPI schema (and the DistillationRun CRD's); the result lists each object.</summary>
    public static Task<ToolResult> ValidateAsync(string manifests)
    {
        var script = Path.Combine(SharedData.RepositoryRoot, "build", "manifests", "validate.mjs");
        if (!Directory.Exists(Path.Combine(SharedData.RepositoryRoot, "build", "manifests", "node_modules", "kubernetes-models")))
            throw new DirectoryNotFoundException("build/manifests/node_modules is missing: run scripts/setup.sh (npm ci there)");
        return RunAsync("node", [script, "--crd", Crd, "-"], manifests, null);
    }

    public static async Task<ToolResult> RunAsync(string file, IEnumerable<string> args, string? input, IReadOnlyDictionary<string, string>? environment)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = input is not null,
            WorkingDirectory = SharedData.RepositoryRoot,
        };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            start.Environment[key] = value;
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (input is not null)
        {
            await process.StandardInput.WriteAsync(input);
            process.StandardInput.Close();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return new ToolResult(process.ExitCode, await output, await error);
    }
}
