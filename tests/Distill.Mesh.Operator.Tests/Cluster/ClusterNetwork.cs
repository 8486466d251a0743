using System.Collections;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Distill.Mesh.Operator.Tests.Cluster;

/// <summary>
/// The cluster's network for in-process pods and services: an address is either fixed (the test's
/// registry, the controller's Service) or a Kubernetes Service (host "name" or "name.namespace.svc"),
/// resolved at each call to one of its Ready pods, so a pod that goes away stops answering and a new
/// one answers under the same name. As <see cref="ServiceDefaults.MeshChannels"/>'s handler table it
/// answers for every address; one that nothing serves fails the call as a refused connection would.
/// </summary>
internal sealed class ClusterNetwork(Func<string, string, HttpMessageHandler?> service) : IReadOnlyDictionary<string, HttpMessageHandler>
{
    private readonly ConcurrentDictionary<string, HttpMessageHandler> _fixed = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Serves <paramref name="address"/> (http://host:port) with <paramref name="handler"/>.</summary>
    public void Add(string address, HttpMessageHandler handler) => _fixed[new Uri(address).Authority] = handler;

    public void Remove(string address) => _fixed.TryRemove(new Uri(address).Authority, out _);

    /// <summary>What answers at <paramref name="uri"/> now, or null.</summary>
    public HttpMessageHandler? Resolve(Uri uri)
    {
        if (_fixed.TryGetValue(uri.Authority, out var handler))
            return handler;
        var labels = uri.Host.Split('.');
        var ns = labels.Length >= 2 ? labels[1] : "default";
        return service(ns, labels[0]);
    }

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out HttpMessageHandler value)
    {
        value = new Route(this);
        return true;
    }

    public HttpMessageHandler this[string key] => new Route(this);

    public bool ContainsKey(string key) => true;

    public IEnumerable<string> Keys => _fixed.Keys;

    public IEnumerable<HttpMessageHandler> Values => _fixed.Values;

    public int Count => _fixed.Count;

    public IEnumerator<KeyValuePair<string, HttpMessageHandler>> GetEnumerator() => _fixed.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>A connection to an address, resolved per request.</summary>
    private sealed class Route(ClusterNetwork network) : HttpMessageHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var target = network.Resolve(request.RequestUri!)
                ?? throw new HttpRequestException($"Connection refused ({request.RequestUri!.Authority}): nothing in the simulated cluster serves it");
            using var invoker = new HttpMessageInvoker(target, disposeHandler: false);
            return await invoker.SendAsync(request, cancellationToken);
        }
    }
}
