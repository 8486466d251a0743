using k8s;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Controller.Kubernetes;

/// <summary>The API server the controller talks to, and the namespace its runs live in.</summary>
public sealed class KubernetesConnection : IDisposable
{
    private const string ServiceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

    public KubernetesConnection(IOptions<KubernetesOptions> options)
    {
        var settings = options.Value;
        var configuration = settings.ApiServer is { } server ? new KubernetesClientConfiguration { Host = server }
            : settings.Kubeconfig is { } file ? KubernetesClientConfiguration.BuildConfigFromConfigFile(file)
            : KubernetesClientConfiguration.IsInCluster() ? KubernetesClientConfiguration.InClusterConfig()
            : KubernetesClientConfiguration.BuildDefaultConfig();
        Client = new k8s.Kubernetes(configuration);
        Namespace = settings.Namespace
            ?? (File.Exists(ServiceAccountNamespace) ? File.ReadAllText(ServiceAccountNamespace).Trim() : null)
            ?? configuration.Namespace
            ?? "default";
    }

    public IKubernetes Client { get; }

    public string Namespace { get; }

    public void Dispose() => Client.Dispose();
}
