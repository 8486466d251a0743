using System.Text.Json.Nodes;
using Distill.Mesh.Controller.Kubernetes;
using Distill.Mesh.Controller.Kubernetes.Entities;
using Distill.Mesh.Controller.Kubernetes.Resources;
using Distill.Mesh.Specs.Runs;
using Distill.Mesh.Testing;
using k8s;
using k8s.Models;

namespace Distill.Mesh.Controller.Tests.Kubernetes;

/// <summary>The object builders are pure functions of the run: tested without any server.</summary>
public class BuilderTests
{
    private static readonly KubernetesOptions Options = new() { Redis = "redis:6379", ReportTo = "http://distill-controller:7100", TokenSecret = "distill-token" };

    private static DistillationRun Run(string stages = "[precompute, train, extract, evaluate, publish]") => new()
    {
        Metadata = new V1ObjectMeta { Name = "qwen-kd", NamespaceProperty = "ml", Uid = "uid-1234", Generation = 1 },
        Spec = new DistillationRunSpec
        {
            Run = JsonNode.Parse($$"""
                { "stages": {{System.Text.Json.JsonSerializer.Serialize(stages.Trim('[', ']').Split(", "))}},
                  "recipe": "kd", "student": { "model": "/models/small" }, "teachers": [ { "model": "/models/big" } ],
                  "signal": { "format": "topk" }, "dataset": { "path": "/models/data.jsonl", "eval_fraction": 0.1 },
                  "precompute": { "shards": 4 }, "extract": { "shards": 3 }, "publish": { "name": "small-from-big" } }
                """)!.AsObject(),
            Teacher = new TeacherSpec { Model = "/models/big", Resources = new PodResourcesSpec { Gpus = 2, Memory = "80Gi" } },
            Resources = new StageResourcesSpec
            {
                Train = new PodResourcesSpec { Gpus = 1, Cpu = "8", Memory = "64Gi", NodeSelector = new() { ["gpu"] = "h100" }, PriorityClassName = "training", QueueName = "team-a" },
            },
        },
    };

    private static RunSpec Spec(DistillationRun run) => RunSpecLoader.Parse(run.Spec.Run.ToJsonString(), [], null, "spec.run").Spec;

    [Fact]
    public void Steps_FollowTheStages_WithIndexedJobsForShardedOnes_AndNamesStayValidLabels()
    {
        var run = Run();
        run.Metadata.Name = new string('r', RunIds.MaxLength);

        var steps = StageJobs.Steps(Spec(run));

        Assert.Equal(["precompute", "train", "extract", "consolidate", "evaluate", "publish"], steps.Select(s => s.Part));
        Assert.Equal([4, 1, 3, 1, 1, 1], steps.Select(s => s.Completions));
        Assert.All(steps, s => Assert.Matches("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", StageJobs.JobName(run, s)));
        Assert.All(steps, s => Assert.True(StageJobs.JobName(run, s).Length <= 63 - 6, StageJobs.JobName(run, s)));
        // Deterministic: the same run always names its children the same (a retried reconcile finds them).
        var again = Run();
        again.Metadata.Name = run.Metadata.Name;
        Assert.Equal(steps.Select(s => StageJobs.JobName(run, s)), StageJobs.Steps(Spec(again)).Select(s => StageJobs.JobName(again, s)));
    }

    [Fact]
    public void TrainJob_RequestsItsGpus_ToleratesGpuNodes_RunsRestricted_AndIsOwnedByTheRun()
    {
        var run = Run();
        var step = StageJobs.Steps(Spec(run)).Single(s => s.Part == "train");

        var job = StageJobs.Build(run, step, run.Spec.Teacher, Options);
        var pod = job.Spec.Template.Spec;
        var container = Assert.Single(pod.Containers);

        Assert.Equal("qwen-kd-train", job.Metadata.Name);
        var owner = Assert.Single(job.Metadata.OwnerReferences);
        Assert.Equal(("DistillationRun", "qwen-kd", "uid-1234", true, true), (owner.Kind, owner.Name, owner.Uid, owner.Controller, owner.BlockOwnerDeletion));
        Assert.Equal("qwen-kd", job.Metadata.Labels[Labels.Run]);
        Assert.Equal("train", job.Metadata.Labels[Labels.Stage]);
        Assert.Equal("team-a", job.Metadata.Labels[Labels.KueueQueue]);
        Assert.True(job.Spec.Suspend); // Kueue admits it
        Assert.Equal("1", container.Resources.Limits[PodTemplates.Gpu].ToString());
        Assert.Equal(container.Resources.Limits["memory"], container.Resources.Requests["memory"]);
        Assert.Contains(pod.Tolerations, t => t.Key == PodTemplates.Gpu && t.OperatorProperty == "Exists" && t.Effect == "NoSchedule");
        Assert.Equal("h100", pod.NodeSelector["gpu"]);
        Assert.Equal("training", pod.PriorityClassName);
        Assert.Equal("Never", pod.RestartPolicy);
        Assert.False(pod.AutomountServiceAccountToken); // run pods never call the Kubernetes API
        Assert.True(pod.SecurityContext.RunAsNonRoot);
        Assert.Equal("RuntimeDefault", pod.SecurityContext.SeccompProfile.Type);
        Assert.True(container.SecurityContext.ReadOnlyRootFilesystem);
        Assert.False(container.SecurityContext.AllowPrivilegeEscalation);
        Assert.Equal(["ALL"], container.SecurityContext.Capabilities.Drop);
        Assert.Contains(container.VolumeMounts, m => m.MountPath == "/tmp");
        Assert.Contains(container.VolumeMounts, m => m.MountPath == PodTemplates.ModelsFolder && m.ReadOnlyProperty == true);
        var env = container.Env.ToDictionary(e => e.Name, e => e.Value);
        Assert.Equal(("train", "qwen-kd", PodTemplates.SpecFile, Options.ReportTo), (env["Trainer__JobStages"], env["DISTILL_RUN_ID"], env["Trainer__JobSpec"], env["Trainer__ReportTo"]));
        Assert.Equal(PodTemplates.TokenFile, env["Mesh__AuthTokenFile"]);
        Assert.DoesNotContain(container.Env, e => e.Name.Contains("Token", StringComparison.Ordinal) && e.Name != "Mesh__AuthTokenFile");
        // An evicted or preempted pod is replaced without counting as a failure; exit code 1 fails the Job.
        Assert.Contains(job.Spec.PodFailurePolicy.Rules, r => r.Action == "Ignore" && r.OnPodConditions.Any(c => c.Type == "DisruptionTarget"));
        Assert.Contains(job.Spec.PodFailurePolicy.Rules, r => r.Action == "FailJob" && r.OnExitCodes.Values.SequenceEqual([1]));
    }

    [Fact]
    public void PrecomputeAndExtract_AreIndexedJobs_OfTheTeacherAndExtractorImages()
    {
        var run = Run();
        var steps = StageJobs.Steps(Spec(run));

        var precompute = StageJobs.Build(run, steps[0], run.Spec.Teacher, Options);
        var extract = StageJobs.Build(run, steps[2], run.Spec.Teacher, Options);
        var consolidate = StageJobs.Build(run, steps[3], run.Spec.Teacher, Options);

        Assert.Equal(("Indexed", 4, 4), (precompute.Spec.CompletionMode, precompute.Spec.Completions, precompute.Spec.Parallelism));
        Assert.Equal(Options.TeacherImage, precompute.Spec.Template.Spec.Containers[0].Image);
        var env = precompute.Spec.Template.Spec.Containers[0].Env.ToDictionary(e => e.Name, e => e.Value);
        Assert.Equal(("/models/big", "redis:6379"), (env["Teacher__Model"], env["Teacher__Redis"]));
        Assert.Equal("2", precompute.Spec.Template.Spec.Containers[0].Resources.Limits[PodTemplates.Gpu].ToString()); // the teacher's own resources
        Assert.Equal(("Indexed", 3), (extract.Spec.CompletionMode, extract.Spec.Completions));
        Assert.Equal(Options.ExtractorImage, extract.Spec.Template.Spec.Containers[0].Image);
        Assert.Equal("true", consolidate.Spec.Template.Spec.Containers[0].Env.Single(e => e.Name == "Extractor__JobConsolidate").Value);
        Assert.Equal(("NonIndexed", 1), (consolidate.Spec.CompletionMode, consolidate.Spec.Completions));
        Assert.Null(extract.Spec.Template.Spec.Tolerations); // no GPU: no GPU toleration
    }

    [Fact]
    public void Teacher_IsOneSharedDeploymentAndHeadlessServicePerModel_WithGrpcProbes()
    {
        var a = Run();
        var b = Run();
        b.Metadata.Name = "other";
        b.Metadata.Uid = "uid-5678";

        var deployment = TeacherPool.Deployment(a, a.Spec.Teacher!, 2, Options);
        var service = TeacherPool.Service(a, a.Spec.Teacher!);
        var container = deployment.Spec.Template.Spec.Containers[0];

        Assert.Equal(TeacherPool.Name(a.Spec.Teacher!), TeacherPool.Name(b.Spec.Teacher!));
        Assert.NotEqual(TeacherPool.Name(a.Spec.Teacher!), TeacherPool.Name(new TeacherSpec { Model = "/models/big", Dtype = "float32" }));
        Assert.Equal(2, deployment.Spec.Replicas);
        Assert.False(Assert.Single(deployment.Metadata.OwnerReferences).Controller);
        Assert.Equal(deployment.Spec.Selector.MatchLabels, deployment.Spec.Template.Metadata.Labels.Where(l => l.Key == Labels.Teacher).ToDictionary());
        Assert.Equal("None", service.Spec.ClusterIP);
        Assert.Equal(deployment.Spec.Selector.MatchLabels, service.Spec.Selector);
        Assert.Equal(("readiness", "liveness"), (container.ReadinessProbe.Grpc.Service, container.LivenessProbe.Grpc.Service));
        Assert.Equal(TeacherPool.Port, container.ReadinessProbe.Grpc.Port);
        Assert.True(container.StartupProbe.FailureThreshold * container.StartupProbe.PeriodSeconds >= 15 * 60); // a model load may take many minutes
        Assert.Equal("Always", deployment.Spec.Template.Spec.RestartPolicy);
        Assert.Equal($"http://{TeacherPool.Name(a.Spec.Teacher!)}.ml.svc:7101", TeacherPool.Endpoint(a.Spec.Teacher!, "ml"));
    }

    [Fact]
    public void WithTls_PodsTrustTheMeshCa_TeachersServeHttps_AndAreProbedOnThePlaintextHealthPort()
    {
        var run = Run();
        var options = new KubernetesOptions { Redis = "redis:6379", TlsSecret = "distill-tls", PodEnvironment = new() { ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://collector:4317" } };

        var teacher = TeacherPool.Deployment(run, run.Spec.Teacher!, 1, options).Spec.Template.Spec;
        var train = StageJobs.Build(run, StageJobs.Steps(Spec(run)).Single(s => s.Part == "train"), run.Spec.Teacher, options).Spec.Template.Spec;

        var teacherEnv = teacher.Containers[0].Env.ToDictionary(e => e.Name, e => e.Value);
        Assert.Equal(($"{PodTemplates.TlsFolder}/tls.crt", $"{PodTemplates.TlsFolder}/tls.key", $"{PodTemplates.TlsFolder}/ca.crt"), (teacherEnv["Mesh__TlsCertificate"], teacherEnv["Mesh__TlsKey"], teacherEnv["Mesh__TlsTrust"]));
        Assert.Equal(PodTemplates.HealthPort.ToString(), teacherEnv["Mesh__HealthPort"]);
        Assert.All(new[] { teacher.Containers[0].ReadinessProbe, teacher.Containers[0].LivenessProbe, teacher.Containers[0].StartupProbe }, p => Assert.Equal(PodTemplates.HealthPort, p.Grpc.Port));
        var trainEnv = train.Containers[0].Env.ToDictionary(e => e.Name, e => e.Value);
        Assert.Equal($"{PodTemplates.TlsFolder}/ca.crt", trainEnv["Mesh__TlsTrust"]);
        Assert.False(trainEnv.ContainsKey("Mesh__TlsCertificate")); // a job serves nobody
        Assert.Equal("http://collector:4317", trainEnv["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        Assert.Contains(train.Volumes, v => v.Secret?.SecretName == "distill-tls");
        Assert.StartsWith("https://", TeacherPool.Endpoint(run.Spec.Teacher!, "ml", tls: true));
    }

    [Fact]
    public void WithAMetricsPort_TeacherAndStagePodsServeMetrics_OnANamedPort_AndWithoutOneNone()
    {
        var run = Run();
        var options = new KubernetesOptions { Redis = "redis:6379", MetricsPort = 9464 };

        var teacher = TeacherPool.Deployment(run, run.Spec.Teacher!, 1, options).Spec.Template.Spec.Containers[0];
        var train = StageJobs.Build(run, StageJobs.Steps(Spec(run)).Single(s => s.Part == "train"), run.Spec.Teacher, options).Spec.Template.Spec.Containers[0];
        var plain = StageJobs.Build(run, StageJobs.Steps(Spec(run)).Single(s => s.Part == "train"), run.Spec.Teacher, Options).Spec.Template.Spec.Containers[0];

        Assert.Equal(["grpc", "metrics"], teacher.Ports.Select(p => p.Name));
        Assert.Equal(9464, Assert.Single(train.Ports).ContainerPort);
        Assert.All(new[] { teacher, train }, c => Assert.Equal("9464", c.Env.Single(e => e.Name == "Mesh__MetricsPort").Value));
        Assert.Null(plain.Ports);
        Assert.DoesNotContain(plain.Env, e => e.Name == "Mesh__MetricsPort");
    }

    [Fact]
    public void PodSpec_ReachesTheTeacherAtItsService_AndLeavesTheOutputFolderToTheServices()
    {
        var run = Run();

        var json = JsonNode.Parse(Distill.Mesh.Controller.Kubernetes.Reconciliation.RunReconciler.PodSpec(Spec(run), "http://teacher-x.ml.svc:7101"))!;

        Assert.Equal("http://teacher-x.ml.svc:7101", json["teachers"]![0]!["endpoint"]!.GetValue<string>());
        Assert.Null(json["output_dir"]);
        Assert.Empty(RunSpecValidator.Problems(RunSpecLoader.Parse(json.ToJsonString(), [], null, "pod"), new RunValidation(false, true, false)));
    }

    [Fact]
    public void Crd_IsGeneratedFromTheTypes_AndTheChartShipsExactlyIt()
    {
        var crd = CrdBuilder.Build();
        var schema = crd.Spec.Versions[0].Schema.OpenAPIV3Schema;

        Assert.Equal("distillationruns.distill.mesh.io", crd.Metadata.Name);
        Assert.Equal(["drun"], crd.Spec.Names.ShortNames);
        Assert.NotNull(crd.Spec.Versions[0].Subresources.Status);
        Assert.Equal(["Phase", "Stage", "Progress", "Teacher", "Age"], crd.Spec.Versions[0].AdditionalPrinterColumns.Select(c => c.Name));
        Assert.True(schema.Properties["spec"].Properties["run"].XKubernetesPreserveUnknownFields);
        Assert.Equal(["run"], schema.Properties["spec"].Required);
        Assert.Equal(["float32", "bfloat16"], schema.Properties["spec"].Properties["teacher"].Properties["dtype"].EnumProperty.Cast<string>());
        Assert.Equal(16, schema.Properties["spec"].Properties["resources"].Properties["train"].Properties["gpus"].Maximum);
        // Every property of the types is in the schema (a new one cannot be forgotten).
        Assert.Equal(typeof(DistillationRunSpec).GetProperties().Length, schema.Properties["spec"].Properties.Count);
        Assert.Equal(typeof(DistillationRunStatus).GetProperties().Length, schema.Properties["status"].Properties.Count);
        var shipped = File.ReadAllText(Path.Combine(SharedData.RepositoryRoot, "charts", "distill-mesh-crds", "templates", "distillationrun-crd.yaml"));
        Assert.True(shipped == CrdBuilder.Yaml(), "charts/distill-mesh-crds/templates/distillationrun-crd.yaml is not what the types generate: run `scripts/distill crd --out charts/distill-mesh-crds/templates/distillationrun-crd.yaml`");
        Assert.Equal(crd.Metadata.Name, KubernetesYaml.Deserialize<V1CustomResourceDefinition>(shipped).Metadata.Name);
    }
}
