using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using k8s;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>
/// An in-memory Kubernetes API server on a loopback port that speaks the real REST and watch protocol, so the
/// unmodified <see cref="k8s.Kubernetes"/> client (typed methods, CustomObjects, GenericClient, watches, leader
/// election) can be pointed at it. Objects are JSON keyed by group/version/resource/namespace/name, with a global
/// resourceVersion, status and scale subresources, selectors, patches, finalizers and owner-reference cascade.
/// Test-side methods (<see cref="Put"/>, <see cref="Patch"/>, <see cref="Delete"/>...) play the cluster's own
/// controllers and go through the same versioning and watch events.
/// </summary>
public sealed class FakeApiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ObjectStore _store = new();
    private readonly ResourceCatalog _catalog = new();
    private readonly ConcurrentQueue<ApiCall> _calls = new();
    private readonly FailureInjector _failures = new();
    private readonly CancellationTokenSource _stopping = new();

    private FakeApiServer()
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http1));
        _app = builder.Build();
        var handler = new ApiRequestHandler(_store, _catalog, _calls, _failures, () => Address, _stopping.Token);
        _app.Run(handler.HandleAsync);
        _store.Committed += e =>
        {
            if (Changed is { } changed)
                changed(new WatchEvent(e.Type, e.Key.Resource, (JsonObject)e.Object.DeepClone()));
        };
    }

    /// <summary>
    /// Raised for every committed change, in resourceVersion order, while the server holds its store lock: a handler
    /// may read or write the server from the same thread but must not block on another thread that does.
    /// </summary>
    public event Action<WatchEvent>? Changed;

    /// <summary>The server's base address, e.g. <c>http://127.0.0.1:41234/</c>.</summary>
    public Uri Address { get; private set; } = null!;

    /// <summary>The current (latest) resourceVersion.</summary>
    public long ResourceVersion => _store.ResourceVersion;

    /// <summary>Every request received so far, in arrival order.</summary>
    public IReadOnlyCollection<ApiCall> Calls => _calls.ToArray();

    /// <summary>Starts a server on 127.0.0.1 with a free port.</summary>
    public static async Task<FakeApiServer> StartAsync(CancellationToken cancellationToken = default)
    {
        var server = new FakeApiServer();
        await server._app.StartAsync(cancellationToken).ConfigureAwait(false);
        var addresses = server._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        server.Address = new Uri(addresses.Single() + "/");
        return server;
    }

    /// <summary>A new client for this server (plain http, no credentials).</summary>
    public k8s.Kubernetes Client() => new(new KubernetesClientConfiguration { Host = Address.ToString() });

    /// <summary>Serves a custom resource, as installing its CRD would.</summary>
    public ApiResource RegisterCustomResource(string group, string version, string plural, string kind, bool statusSubresource, bool scaleSubresource = false, bool namespaced = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(group);
        var resource = new ApiResource(group, version, plural, kind, namespaced, statusSubresource, scaleSubresource, ReturnsDeletedObject: true);
        _catalog.Add(resource);
        return resource;
    }

    /// <summary>
    /// The distinct (verb, group, resource) triples called so far, resource as RBAC names it ("pods/status"): what a
    /// Role for the code under test must allow.
    /// </summary>
    public IReadOnlySet<(string Verb, string Group, string Resource)> Permissions() =>
        _calls.Select(c => (c.Verb, c.Group, c.RbacResource)).ToHashSet();

    /// <summary>Forgets the recorded calls.</summary>
    public void ClearCalls() => _calls.Clear();

    /// <summary>A copy of the stored object, or null. Use "" as <paramref name="ns"/> for a cluster-scoped one.</summary>
    public JsonObject? Get(string group, string version, string resource, string ns, string name) =>
        _store.Get(_catalog.Require(group, version, resource), ns, name);

    /// <summary>Copies of the stored objects of a resource, in one namespace or (null) all of them.</summary>
    public IReadOnlyList<JsonObject> List(string group, string version, string resource, string? ns = null) =>
        _store.List(_catalog.Require(group, version, resource), ns, LabelSelector.Everything, FieldSelector.Everything).Items;

    /// <summary>
    /// Creates or wholly replaces an object (spec and status alike, no resourceVersion check), as a cluster
    /// controller writes it. The namespace comes from <c>metadata.namespace</c>. Returns the stored object.
    /// </summary>
    public JsonObject Put(string group, string version, string resource, JsonObject obj)
    {
        var type = _catalog.Require(group, version, resource);
        var meta = obj["metadata"] as JsonObject ?? throw new ArgumentException("the object has no metadata", nameof(obj));
        var ns = type.Namespaced ? ObjectStore.Text(meta, "namespace") ?? throw new ArgumentException("a namespaced object needs metadata.namespace", nameof(obj)) : "";
        var name = ObjectStore.Text(meta, "name") ?? throw new ArgumentException("the object needs metadata.name", nameof(obj));
        return ServerSide(() =>
        {
            if (_store.Get(type, ns, name) is null)
                return _store.Create(type, ns, obj, keepStatus: true);
            return _store.Update(type, ns, name, _ => (JsonObject)obj.DeepClone(), WriteScope.Everything);
        });
    }

    /// <summary>Merge-patches (RFC 7386) an object, status included, as a cluster controller would. Returns the stored object.</summary>
    public JsonObject Patch(string group, string version, string resource, string ns, string name, JsonObject mergePatch)
    {
        var type = _catalog.Require(group, version, resource);
        return ServerSide(() => _store.Update(type, ns, name, current => (JsonObject)MergePatch.Apply(current, mergePatch, strategic: false)!, WriteScope.Everything));
    }

    /// <summary>Deletes an object with the API's rules (finalizers, cascade). True when it is gone, false when only marked.</summary>
    public bool Delete(string group, string version, string resource, string ns, string name)
    {
        var type = _catalog.Require(group, version, resource);
        return ServerSide(() => _store.Delete(type, ns, name, DeletionOptions.Background).Removed);
    }

    /// <summary>The object once <paramref name="predicate"/> holds for it; a <see cref="TimeoutException"/> naming its last state otherwise.</summary>
    public Task<JsonObject> WaitForAsync(string group, string version, string resource, string ns, string name, Func<JsonObject, bool> predicate, TimeSpan timeout) =>
        _store.WaitForAsync(_catalog.Require(group, version, resource), ns, name, predicate, timeout);

    /// <summary>Completes once the object no longer exists; a <see cref="TimeoutException"/> otherwise.</summary>
    public Task WaitForAbsentAsync(string group, string version, string resource, string ns, string name, TimeSpan timeout) =>
        _store.WaitForAbsentAsync(_catalog.Require(group, version, resource), ns, name, timeout);

    /// <summary>
    /// Makes the next <paramref name="times"/> calls with this RBAC verb on this resource ("jobs", or "jobs/status"
    /// for a subresource) fail with <paramref name="status"/> and a matching Status body, without being served.
    /// </summary>
    public void FailNext(string verb, string resource, HttpStatusCode status, int times = 1) =>
        _failures.Add(verb, resource, status, times);

    /// <summary>Drops the event history, so that a watch from any earlier resourceVersion gets 410 Expired.</summary>
    public void ExpireHistory() => _store.ExpireHistory();

    /// <summary>Ends open watches and stops the server.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _store.CloseWatches();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(timeout.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private static T ServerSide<T>(Func<T> write)
    {
        try
        {
            return write();
        }
        catch (ApiError e)
        {
            throw new InvalidOperationException($"{(int)e.Code} {e.Reason}: {e.Message}", e);
        }
    }
}
