using System.Xml.Linq;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Deployment.Tests;

/// <summary>
/// Dependencies point one way (DESIGN §4): engine ← torch-free specs/clients ← services ← CLI. Read
/// from the project files themselves, so a new reference that breaks the rule fails here.
/// </summary>
public class ProjectGraphTests
{
    private static readonly string[] Services = ["Teacher", "Trainer", "Extractor", "Registry", "Controller"];

    private sealed record ProjectFile(string Name, string Sdk, IReadOnlyList<string> Projects, IReadOnlyList<string> Packages, IReadOnlyList<string> Frameworks, bool UsesLibTorch);

    private static ProjectFile Read(string name)
    {
        var path = Path.Combine(SharedData.RepositoryRoot, "services", $"Distill.Mesh.{name}", $"Distill.Mesh.{name}.csproj");
        var xml = XDocument.Load(path);
        var projects = xml.Descendants("ProjectReference").Select(e => Path.GetFileNameWithoutExtension(e.Attribute("Include")!.Value).Replace("Distill.Mesh.", "")).ToList();
        var packages = xml.Descendants("PackageReference").Where(e => e.Attribute("ExcludeAssets")?.Value is not ("native" or "all"))
            .Select(e => e.Attribute("Include")!.Value).ToList();
        var frameworks = xml.Descendants("FrameworkReference").Select(e => e.Attribute("Include")!.Value).ToList();
        return new ProjectFile(name, xml.Root!.Attribute("Sdk")!.Value, projects, packages, frameworks,
            xml.Descendants("DistillUsesLibTorch").Any(e => e.Value.Trim() == "true"));
    }

    private static IEnumerable<string> AllProjects() =>
        Directory.GetDirectories(Path.Combine(SharedData.RepositoryRoot, "services")).Select(d => Path.GetFileName(d)!.Replace("Distill.Mesh.", ""));

    [Fact]
    public void ServiceProjects_ReferenceNoOtherServiceProject()
    {
        foreach (var service in Services)
        {
            var offending = Read(service).Projects.Intersect(Services).ToList();
            Assert.True(offending.Count == 0, $"{service} references the service project(s) {string.Join(", ", offending)}; share a library (Clients, Specs) instead");
        }
    }

    [Fact]
    public void LibrariesReferenceNoServiceAndNoCli()
    {
        foreach (var library in AllProjects().Except(Services).Except(["Cli"]))
        {
            var offending = Read(library).Projects.Intersect([.. Services, "Cli"]).ToList();
            Assert.True(offending.Count == 0, $"library {library} references {string.Join(", ", offending)}");
        }
    }

    [Fact]
    public void Engine_HasNoAspNetGrpcOrContracts_AndSpecsIsTorchFree()
    {
        foreach (var engine in new[] { "Modeling", "Training" })
        {
            var project = Read(engine);
            Assert.DoesNotContain("Contracts", project.Projects);
            Assert.DoesNotContain(project.Packages, p => p.StartsWith("Grpc", StringComparison.Ordinal));
            Assert.Empty(project.Frameworks);
        }

        var specs = Read("Specs");
        Assert.Empty(specs.Projects);
        Assert.DoesNotContain(specs.Packages, p => p.Contains("Torch", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void OnlyTheExecutablesThatRunTensors_CarryLibTorch()
    {
        var carrying = AllProjects().Where(p => Read(p).UsesLibTorch).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["Cli", "Extractor", "Teacher", "Trainer"], carrying);
        // The controller needs no engine at all; the registry reads safetensors headers only.
        Assert.DoesNotContain("Modeling", Read("Controller").Projects);
        Assert.DoesNotContain("Training", Read("Controller").Projects);
        Assert.DoesNotContain("Training", Read("Registry").Projects);
        foreach (var project in AllProjects())
            Assert.DoesNotContain(Read(project).Packages, p => p is "libtorch-cpu-linux-x64" or "TorchSharp-cuda-linux" or "TorchSharp-cpu");
    }
}
