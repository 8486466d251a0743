using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Specs.Runs;
using Distill.Mesh.Testing;
using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace Distill.Mesh.Deployment.Tests.Charts;

/// <summary>k8s/ (the kustomize base rendered from the chart, its overlays, the sample runs) and skaffold.yaml.</summary>
public class ManifestTests
{
    private static string Root => SharedData.RepositoryRoot;

    [Fact]
    public async Task KustomizeBase_IsTheChartRenderedWithItsDefaults()
    {
        using var fresh = new TempFolder();
        var render = await KubeTools.RunAsync("bash", [Path.Combine(Root, "build", "render-k8s.sh"), fresh.Path], null, new Dictionary<string, string> { ["DISTILL_HELM"] = KubeTools.Helm });
        render.EnsureSuccess("build/render-k8s.sh");
        foreach (var file in new[] { "distill-mesh.yaml", "distillationrun-crd.yaml" })
        {
            Assert.True(File.ReadAllText(Path.Combine(fresh.Path, file)) == File.ReadAllText(Path.Combine(Root, "k8s", "base", file)),
                $"k8s/base/{file} is not what the chart renders: run build/render-k8s.sh");
        }
    }

    [Theory]
    [InlineData("base", "distill")]
    [InlineData("overlays/cpu-dev", "distill-dev")]
    [InlineData("overlays/gpu", "distill")]
    public async Task EveryKustomization_Renders_AndIsValidKubernetes(string path, string ns)
    {
        var yaml = (await KubeTools.KubectlAsync("kustomize", Path.Combine(Root, "k8s", path))).EnsureSuccess($"kubectl kustomize k8s/{path}").Output;

        var validation = await KubeTools.ValidateAsync(yaml);
        Assert.True(validation.ExitCode == 0, validation.Output + validation.Error);
        var rendered = Rendered.Parse(yaml);
        var controller = rendered.Single<V1Deployment>("distill-mesh-controller");
        Assert.Equal(ns, controller.Metadata.NamespaceProperty);
        // The controller's account is bound in the namespace it runs in.
        Assert.Equal(ns, Assert.Single(rendered.All<V1RoleBinding>()).Subjects.Single().NamespaceProperty);
        var env = controller.Spec.Template.Spec.Containers[0].Env.Where(e => e.Value is not null).ToDictionary(e => e.Name, e => e.Value);
        if (path.EndsWith("cpu-dev", StringComparison.Ordinal))
        {
            Assert.Equal(("cpu", "0", "0"), (env["Controller__Kubernetes__TeacherDevice"], env["Controller__Kubernetes__TeacherGpus"], env["Controller__Kubernetes__StageGpus__train"]));
            Assert.Equal(1, controller.Spec.Replicas);
            Assert.Empty(rendered.All<V1PodDisruptionBudget>());
            Assert.Contains(rendered.All<V1Secret>(), s => s.Metadata.Name == "distill-token");
            Assert.Contains(rendered.All<V1PersistentVolumeClaim>(), c => c.Metadata.Name == "distill-models");
        }

        if (path.EndsWith("gpu", StringComparison.Ordinal))
            Assert.EndsWith("-cuda", env["Controller__Kubernetes__TrainerImage"]);
    }

    [Fact]
    public async Task Samples_AreValidDistillationRuns_WithValidRunSpecs()
    {
        var files = Directory.GetFiles(Path.Combine(Root, "k8s", "samples"), "*.yaml");
        Assert.True(files.Length >= 4, "k8s/samples should mirror configs/ (two KD pairs, an extraction, a shared-teacher precompute)");
        var runs = 0;
        foreach (var file in files)
        {
            var text = File.ReadAllText(file);
            var validation = await KubeTools.ValidateAsync(text);
            Assert.True(validation.ExitCode == 0, $"{Path.GetFileName(file)}: {validation.Output}");
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            foreach (var document in stream.Documents)
            {
                var run = (YamlMappingNode)((YamlMappingNode)document.RootNode)["spec"]["run"];
                var json = System.Text.Json.JsonSerializer.Serialize(ToPlain(run));
                var parsed = RunSpecLoader.Parse(json, [], folder: null, Path.GetFileName(file));
                var problems = RunSpecValidator.Problems(parsed, new RunValidation(CheckPaths: false, ThroughMesh: true, PrecomputeThroughServices: false));
                Assert.True(problems.Count == 0, $"{Path.GetFileName(file)}: {string.Join("; ", problems)}");
                runs++;
            }
        }

        Assert.True(runs >= 5);
    }

    private static object? ToPlain(YamlNode node) => node switch
    {
        YamlMappingNode map => map.Children.ToDictionary(c => ((YamlScalarNode)c.Key).Value!, c => ToPlain(c.Value)),
        YamlSequenceNode list => list.Children.Select(ToPlain).ToList(),
        YamlScalarNode { Style: not YamlDotNet.Core.ScalarStyle.Plain } scalar => scalar.Value,
        YamlScalarNode scalar when long.TryParse(scalar.Value, out var whole) => whole,
        YamlScalarNode scalar when double.TryParse(scalar.Value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var real) => real,
        YamlScalarNode scalar when scalar.Value is "true" or "false" => scalar.Value == "true",
        YamlScalarNode scalar => scalar.Value,
        _ => null,
    };

    [Fact]
    public async Task Skaffold_BuildsEveryImageFromTheDockerfile_AndDeploysTheCharts()
    {
        // No skaffold binary or schema is obtainable offline: check what it points at exists and renders.
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(Path.Combine(Root, "skaffold.yaml"))));
        var config = (YamlMappingNode)stream.Documents.Single().RootNode;
        Assert.Equal("skaffold/v4beta13", config["apiVersion"].ToString());
        var docker = Dockerfile.Load();
        var artifacts = ((YamlSequenceNode)config["build"]["artifacts"]).Children.Cast<YamlMappingNode>().ToList();
        Assert.Equal(["controller", "registry", "teacher", "trainer", "extractor"], artifacts.Select(a => a["docker"]["target"].ToString()));
        foreach (var artifact in artifacts)
        {
            Assert.True(File.Exists(Path.Combine(Root, artifact["docker"]["dockerfile"].ToString())));
            var target = artifact["docker"]["target"].ToString();
            Assert.True(docker.Stages.Any(s => s.Name == target), $"build/Dockerfile has no target {target}");
            Assert.Equal($"distill-mesh/{target}", artifact["image"].ToString());
        }

        var releases = ((YamlSequenceNode)config["manifests"]["helm"]["releases"]).Children.Cast<YamlMappingNode>().ToList();
        Assert.Equal(["charts/distill-mesh-crds", "charts/distill-mesh"], releases.Select(r => r["chartPath"].ToString()));
        var templates = (YamlMappingNode)releases[1]["setValueTemplates"];
        foreach (var (key, value) in templates.Children)
        {
            var service = key.ToString().Split('.')[1];
            Assert.Equal($"{{{{.IMAGE_FULLY_QUALIFIED_distill_mesh_{service}}}}}", value.ToString());
        }

        // The cuda profile passes TORCH_BACKEND to the trainer and teacher builds (the Dockerfile reads it).
        var cuda = ((YamlSequenceNode)config["profiles"]).Children.Cast<YamlMappingNode>().Single(p => p["name"].ToString() == "cuda");
        var patched = ((YamlSequenceNode)cuda["patches"]).Children.Cast<YamlMappingNode>().Select(p => int.Parse(p["path"].ToString().Split('/')[3])).ToList();
        Assert.Equal(["teacher", "trainer"], patched.Select(i => artifacts[i]["docker"]["target"].ToString()));
        Assert.Contains("TORCH_BACKEND", File.ReadAllText(Path.Combine(Root, "build", "Dockerfile")));

        // The dev profile's values and skaffold's image values are values the chart accepts, and render valid objects.
        var dev = ((YamlSequenceNode)config["profiles"]).Children.Cast<YamlMappingNode>().Single(p => p["name"].ToString() == "dev");
        var sets = ((YamlMappingNode)((YamlSequenceNode)dev["patches"]).Children.Cast<YamlMappingNode>().Single()["value"]).Children.Select(c => $"{c.Key}={c.Value}")
            .Concat(templates.Children.Select(c => $"{c.Key}=registry.local/{c.Key.ToString().Split('.')[1]}:dev")).ToList();
        var yaml = await KubeTools.TemplateAsync("distill-mesh", sets);
        Assert.True((await KubeTools.ValidateAsync(yaml)).ExitCode == 0);
        var env = Rendered.Parse(yaml).Single<V1Deployment>("distill-mesh-controller").Spec.Template.Spec.Containers[0].Env.Where(e => e.Value is not null).ToDictionary(e => e.Name, e => e.Value);
        Assert.Equal(("cpu", "registry.local/trainer:dev"), (env["Controller__Kubernetes__TeacherDevice"], env["Controller__Kubernetes__TrainerImage"]));
    }
}
