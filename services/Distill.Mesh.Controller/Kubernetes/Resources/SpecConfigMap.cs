using Distill.Mesh.Controller.Kubernetes.Entities;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Resources;

/// <summary>The run spec the run's pods read (/etc/distill/run.json): the canonical spec, with the teacher's endpoint filled in and no output folder.</summary>
public static class SpecConfigMap
{
    public static string Name(DistillationRun run) => Labels.ChildName(run, "spec");

    public static V1ConfigMap Build(DistillationRun run, string podSpecJson) => new()
    {
        ApiVersion = "v1",
        Kind = "ConfigMap",
        Metadata = Labels.Child(run, Name(run), "spec"),
        Data = new Dictionary<string, string> { ["run.json"] = podSpecJson },
    };
}
