using k8s;
using k8s.Models;

namespace Distill.Mesh.Deployment.Tests.Charts;

/// <summary>Rendered manifests as the typed objects the API server would store (unknown fields refused).</summary>
internal sealed class Rendered
{
    private Rendered(IReadOnlyList<object> objects) => Objects = objects;

    public IReadOnlyList<object> Objects { get; }

    /// <summary>Parses every document; a field the Kubernetes types do not have is an error (strict), as `kubectl apply` makes it.</summary>
    public static Rendered Parse(string yaml)
    {
        var types = new Dictionary<string, Type>(StringComparer.Ordinal)
        {
            ["monitoring.coreos.com/v1/ServiceMonitor"] = typeof(Unchecked),
            ["monitoring.coreos.com/v1/PodMonitor"] = typeof(Unchecked),
            ["distill.mesh.io/v1alpha1/DistillationRun"] = typeof(Unchecked),
        };
        // Documents with nothing but comments (helm leaves some) are not objects.
        var documents = System.Text.RegularExpressions.Regex.Split(yaml, @"^---[ \t]*$", System.Text.RegularExpressions.RegexOptions.Multiline)
            .Where(d => d.Split('\n').Any(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith('#')));
        return new Rendered(documents.SelectMany(d => KubernetesYaml.LoadAllFromString(d, types, strict: true)).ToList());
    }

    public IEnumerable<T> All<T>() => Objects.OfType<T>();

    public T Single<T>(string name) where T : IKubernetesObject<V1ObjectMeta> =>
        All<T>().SingleOrDefault(o => o.Metadata.Name == name) ?? throw new Xunit.Sdk.XunitException($"no {typeof(T).Name} {name} among {string.Join(", ", Names())}");

    public IEnumerable<string> Names() => Objects.OfType<IKubernetesObject<V1ObjectMeta>>().Select(o => $"{o.Kind}/{o.Metadata.Name}");

    /// <summary>The pod templates of every workload (and bare pods), with what owns them.</summary>
    public IEnumerable<(string Owner, V1PodSpec Pod)> PodSpecs()
    {
        foreach (var d in All<V1Deployment>())
            yield return ($"Deployment/{d.Metadata.Name}", d.Spec.Template.Spec);
        foreach (var s in All<V1StatefulSet>())
            yield return ($"StatefulSet/{s.Metadata.Name}", s.Spec.Template.Spec);
        foreach (var j in All<V1Job>())
            yield return ($"Job/{j.Metadata.Name}", j.Spec.Template.Spec);
        foreach (var p in All<V1Pod>())
            yield return ($"Pod/{p.Metadata.Name}", p.Spec);
    }

    /// <summary>A kind the client has no type for (validated by the node validator instead).</summary>
    public sealed class Unchecked : IKubernetesObject<V1ObjectMeta>
    {
        public string ApiVersion { get; set; } = "";

        public string Kind { get; set; } = "";

        public V1ObjectMeta Metadata { get; set; } = new();

        public Dictionary<string, object>? Spec { get; set; }
    }
}
