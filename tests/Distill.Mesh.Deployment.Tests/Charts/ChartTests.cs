using Distill.Mesh.Testing;
using k8s.Models;

namespace Distill.Mesh.Deployment.Tests.Charts;

/// <summary>
/// The Helm charts, proved offline with the real helm: lint, render over a matrix of values, every
/// object valid for Kubernetes 1.34 (node validator) and for the typed client (no unknown field),
/// every workload restricted, probed and bounded, every image one the Dockerfile builds.
/// </summary>
public class ChartTests
{
    private static readonly Dockerfile Docker = Dockerfile.Load();

    /// <summary>The value sets CI renders (name, --set values).</summary>
    public static TheoryData<string, string[]> Matrix => new()
    {
        { "defaults", [] },
        { "gpu", ["image.gpuSuffix=-cuda", "teacher.gpus=2", "stages.gpus.train=2", "controller.nodeSelector.pool=system"] },
        { "external-redis", ["redis.enabled=false", "redis.external.url=redis.cache.svc:6379\\,password=s3cret"] },
        { "tls-networkpolicy", ["tls.enabled=true", "tls.secretName=mesh-tls", "networkPolicy.enabled=true", "networkPolicy.clientNamespaces={ml-users}"] },
        { "observability", ["serviceMonitor.enabled=true", "serviceMonitor.labels.release=prometheus", "telemetry.collector.enabled=true", "dashboards.enabled=true"] },
        { "ha-off", ["controller.replicas=1", "redis.persistence.enabled=true", "storage.models.create=true", "auth.existingSecret=my-token"] },
    };

    [Fact]
    public async Task BothCharts_PassHelmLintStrict()
    {
        var lint = await KubeTools.HelmAsync("lint", "--strict", KubeTools.Chart("distill-mesh"), KubeTools.Chart("distill-mesh-crds"));
        Assert.True(lint.ExitCode == 0, lint.Output + lint.Error);
        Assert.Contains("2 chart(s) linted, 0 chart(s) failed", lint.Output);
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task Render_IsValidKubernetes_RestrictedProbedAndBounded(string name, string[] sets)
    {
        var yaml = await KubeTools.TemplateAsync("distill-mesh", sets);

        var validation = await KubeTools.ValidateAsync(yaml);
        Assert.True(validation.ExitCode == 0, $"{name}: {validation.Output}{validation.Error}");
        var rendered = Rendered.Parse(yaml);
        Assert.NotEmpty(rendered.PodSpecs());
        foreach (var (owner, pod) in rendered.PodSpecs())
        {
            Assert.True(pod.SecurityContext?.RunAsNonRoot == true, $"{owner}: runAsNonRoot");
            Assert.Equal("RuntimeDefault", pod.SecurityContext?.SeccompProfile?.Type);
            Assert.NotEqual(0, pod.SecurityContext?.RunAsUser ?? 0);
            foreach (var container in pod.Containers)
            {
                var where = $"{owner} container {container.Name}";
                Assert.True(container.SecurityContext is { AllowPrivilegeEscalation: false, ReadOnlyRootFilesystem: true }, $"{where}: privilege escalation or a writable root");
                Assert.Equal(["ALL"], container.SecurityContext.Capabilities?.Drop);
                Assert.True(container.Resources?.Limits?.ContainsKey("cpu") == true && container.Resources.Limits.ContainsKey("memory"), $"{where}: no cpu and memory limits");
                if (!owner.StartsWith("Pod/", StringComparison.Ordinal))
                    Assert.True(container.LivenessProbe is not null && container.ReadinessProbe is not null, $"{where}: no liveness and readiness probes");
                var claimTemplates = rendered.All<V1StatefulSet>().Where(set => owner == $"StatefulSet/{set.Metadata.Name}").SelectMany(set => set.Spec.VolumeClaimTemplates ?? []).Select(c => c.Metadata.Name);
                var volumes = (pod.Volumes ?? []).Select(v => v.Name).Concat(claimTemplates).ToList();
                foreach (var mount in container.VolumeMounts ?? [])
                    Assert.True(volumes.Contains(mount.Name), $"{where}: mounts {mount.Name}, which is no volume of the pod");
            }
        }

        // Every mesh image (the workloads' and the ones the operator gives run pods) is a Dockerfile target.
        var images = rendered.PodSpecs().SelectMany(p => p.Pod.Containers).Select(c => c.Image)
            .Concat(rendered.Single<V1Deployment>("distill-mesh-controller").Spec.Template.Spec.Containers[0].Env.Where(e => e.Name.EndsWith("Image", StringComparison.Ordinal)).Select(e => e.Value));
        foreach (var image in images.Where(i => i.StartsWith("distill-mesh/", StringComparison.Ordinal)))
        {
            var target = image["distill-mesh/".Length..].Split(':')[0];
            Assert.True(Docker.Stages.Any(s => s.Name == target), $"{image}: build/Dockerfile has no target {target}");
        }
    }

    [Fact]
    public async Task ValueSets_ChangeWhatTheySay()
    {
        static Dictionary<string, string> ControllerEnv(Rendered r) =>
            r.Single<V1Deployment>("distill-mesh-controller").Spec.Template.Spec.Containers[0].Env.Where(e => e.Value is not null).ToDictionary(e => e.Name, e => e.Value);

        var defaults = Rendered.Parse(await KubeTools.TemplateAsync("distill-mesh", []));
        Assert.Equal(2, defaults.Single<V1Deployment>("distill-mesh-controller").Spec.Replicas);
        Assert.Single(defaults.All<V1PodDisruptionBudget>());
        Assert.Equal("distill-mesh-redis:6379", ControllerEnv(defaults)["Controller__Kubernetes__Redis"]);
        Assert.Equal("http://distill-mesh-controller:7100", ControllerEnv(defaults)["Controller__Kubernetes__ReportTo"]);
        Assert.Equal(7100, defaults.Single<V1Deployment>("distill-mesh-controller").Spec.Template.Spec.Containers[0].ReadinessProbe.Grpc.Port);
        Assert.Equal("Recreate", defaults.Single<V1Deployment>("distill-mesh-registry").Spec.Strategy.Type); // one writer
        Assert.Empty(defaults.All<V1NetworkPolicy>());
        Assert.Contains(defaults.All<V1Secret>(), s => s.Metadata.Name == "distill-mesh-token");

        var gpu = ControllerEnv(Rendered.Parse(await KubeTools.TemplateAsync("distill-mesh", ["image.gpuSuffix=-cuda", "teacher.gpus=2"])));
        Assert.Equal(("distill-mesh/trainer:0.1.0-cuda", "distill-mesh/teacher:0.1.0-cuda", "distill-mesh/extractor:0.1.0"), (gpu["Controller__Kubernetes__TrainerImage"], gpu["Controller__Kubernetes__TeacherImage"], gpu["Controller__Kubernetes__ExtractorImage"]));
        Assert.Equal("2", gpu["Controller__Kubernetes__TeacherGpus"]);

        var external = Rendered.Parse(await KubeTools.TemplateAsync("distill-mesh", ["redis.enabled=false", "redis.external.url=redis.cache.svc:6379"]));
        Assert.Empty(external.All<V1StatefulSet>());
        Assert.Equal("redis.cache.svc:6379", ControllerEnv(external)["Controller__Kubernetes__Redis"]);

        var tls = Rendered.Parse(await KubeTools.TemplateAsync("distill-mesh", ["tls.enabled=true", "tls.secretName=mesh-tls", "networkPolicy.enabled=true"]));
        var tlsEnv = ControllerEnv(tls);
        Assert.Equal(("mesh-tls", "https://distill-mesh-controller:7100", "7110"), (tlsEnv["Controller__Kubernetes__TlsSecret"], tlsEnv["Controller__Kubernetes__ReportTo"], tlsEnv["Mesh__HealthPort"]));
        Assert.All(tls.All<V1Deployment>().Where(d => d.Metadata.Name is "distill-mesh-controller" or "distill-mesh-registry"),
            d => Assert.Equal(7110, d.Spec.Template.Spec.Containers[0].ReadinessProbe.Grpc.Port));
        Assert.Single(tls.All<V1NetworkPolicy>());

        var single = Rendered.Parse(await KubeTools.TemplateAsync("distill-mesh", ["controller.replicas=1", "auth.existingSecret=my-token"]));
        Assert.Empty(single.All<V1PodDisruptionBudget>());
        Assert.DoesNotContain(single.All<V1Secret>(), s => s.Metadata.Name == "distill-mesh-token");
        Assert.Equal("my-token", ControllerEnv(single)["Controller__Kubernetes__TokenSecret"]);

        var monitored = await KubeTools.TemplateAsync("distill-mesh", ["serviceMonitor.enabled=true", "telemetry.collector.enabled=true"]);
        Assert.Contains("kind: ServiceMonitor", monitored);
        // The operator's pods (teachers, stage Jobs) are scraped too: a metrics port on each, found by a PodMonitor.
        Assert.Contains("kind: PodMonitor", monitored);
        Assert.Equal("9464", ControllerEnv(Rendered.Parse(monitored))["Controller__Kubernetes__MetricsPort"]);
        Assert.Equal("http://distill-mesh-collector:4317", ControllerEnv(Rendered.Parse(monitored))["Controller__Kubernetes__PodEnvironment__OTEL_EXPORTER_OTLP_ENDPOINT"]);
    }

    [Theory]
    [InlineData("controller.replicas=two", "at '/controller/replicas': got string, want integer")]
    [InlineData("controller.replicas=0", "/controller/replicas")]
    [InlineData("teacher.device=tpu", "'tpu' does not match pattern")]
    [InlineData("image.pullPolicy=Sometimes", "value must be one of 'Always', 'IfNotPresent', 'Never'")]
    [InlineData("controller.replica=2", "additional properties 'replica' not allowed")]
    [InlineData("auth.scope=everything", "value must be one of 'mutating', 'all'")]
    [InlineData("redis.maxMemoryPolicy=lru", "/redis/maxMemoryPolicy")]
    [InlineData("storage.runs.size=lots", "/storage/runs/size")]
    [InlineData("teacher.idleTimeoutSeconds=-1", "/teacher/idleTimeoutSeconds")]
    [InlineData("redis.enabled=false", "redis.external.url is required when redis.enabled is false")]
    [InlineData("tls.enabled=true", "tls.secretName is required when tls.enabled")]
    [InlineData("serviceMonitor.enabled=true,telemetry.prometheus=false", "serviceMonitor.enabled needs telemetry.prometheus")]
    public async Task BadValues_AreRefusedAtInstall_NamingTheValue(string set, string message)
    {
        var result = await KubeTools.HelmAsync("template", "distill-mesh", KubeTools.Chart("distill-mesh"), "--set", set);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(message, result.Error);
    }

    [Fact]
    public async Task CrdChart_RendersExactlyTheGeneratedCrd()
    {
        var rendered = await KubeTools.TemplateAsync("distill-mesh-crds", []);
        var crd = Assert.IsType<V1CustomResourceDefinition>(Assert.Single(Rendered.Parse(rendered).Objects));
        var generated = k8s.KubernetesYaml.Deserialize<V1CustomResourceDefinition>(File.ReadAllText(KubeTools.Crd));
        Assert.Equal(k8s.KubernetesJson.Serialize(generated), k8s.KubernetesJson.Serialize(crd));
        Assert.True((await KubeTools.ValidateAsync(rendered)).ExitCode == 0);
    }

    [Fact]
    public async Task Validator_RefusesWhatKubernetesWould()
    {
        // The validator can fail: a Deployment with a string for replicas, a pod without containers, an unknown kind.
        var bad = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: { name: x }
            spec: { replicas: "2", selector: { matchLabels: { a: b } }, template: { metadata: { labels: { a: b } }, spec: { containers: [ { name: c, image: i } ] } } }
            ---
            apiVersion: v1
            kind: Pod
            metadata: { name: y }
            spec: {}
            ---
            apiVersion: example.com/v1
            kind: Widget
            metadata: { name: z }
            """;
        var result = await KubeTools.ValidateAsync(bad);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("invalid Deployment x: data/spec/replicas must be integer", result.Output);
        Assert.Contains("invalid Pod y", result.Output);
        Assert.Contains("invalid Widget z: no schema", result.Output);
        Assert.Throws<YamlDotNet.Core.YamlException>(() => Rendered.Parse("apiVersion: v1\nkind: Service\nmetadata: { name: s }\nspec: { portz: [] }\n"));
    }
}
