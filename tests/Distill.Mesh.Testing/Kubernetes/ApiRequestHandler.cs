using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>
/// Serves one HTTP request the way kube-apiserver would: discovery documents, or a verb on a resource path
/// (get, list, watch, create, update, patch, delete, deletecollection), with failures as Status objects.
/// </summary>
internal sealed class ApiRequestHandler(
    ObjectStore store,
    ResourceCatalog catalog,
    ConcurrentQueue<ApiCall> calls,
    FailureInjector failures,
    Func<Uri> address,
    CancellationToken stopping)
{
    public async Task HandleAsync(HttpContext context)
    {
        try
        {
            await DispatchAsync(context).ConfigureAwait(false);
        }
        catch (ApiError e) when (!context.Response.HasStarted)
        {
            await WriteAsync(context, e.Code, e.ToStatus()).ConfigureAwait(false);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException && !context.Response.HasStarted)
        {
            // A body that is not the JSON the verb needs (not an object, a field of the wrong type...).
            await WriteAsync(context, HttpStatusCode.BadRequest, ApiError.BadRequest(e.Message).ToStatus()).ConfigureAwait(false);
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            // A fault in the fake itself: say what it was rather than answer an empty 500.
            await WriteAsync(context, HttpStatusCode.InternalServerError, ApiError.Status(HttpStatusCode.InternalServerError, "InternalError", e.ToString())).ConfigureAwait(false);
        }
    }

    private async Task DispatchAsync(HttpContext context)
    {
        var request = context.Request;
        var route = ApiRoute.Parse(request.Path.Value ?? "") ?? throw PageNotFound();
        if (route.Document is not null)
        {
            if (!HttpMethods.IsGet(request.Method))
                throw ApiError.MethodNotAllowed("the server does not allow this method on the requested resource");
            await WriteAsync(context, HttpStatusCode.OK, catalog.Document(route, address()) ?? throw PageNotFound()).ConfigureAwait(false);
            return;
        }

        var watch = route.LegacyWatch || request.Query["watch"] is ["true"] or ["1"];
        var verb = Verb(request.Method, route, watch);
        var call = new ApiCall(verb, route.Group, route.Plural!, route.Subresource, route.Namespace);
        calls.Enqueue(call);

        var resource = catalog.Find(route.Group, route.Version!, route.Plural!) ?? throw PageNotFound();
        // Only list and watch span namespaces; a cluster-scoped resource has none.
        if (resource.Namespaced ? route.Namespace is null && verb is not ("list" or "watch") : route.Namespace is not null)
            throw PageNotFound();
        if (route.Subresource is { } sub && !(sub == "status" && resource.StatusSubresource) && !(sub == "scale" && resource.ScaleSubresource))
            throw PageNotFound();
        if (failures.Take(call) is { } injected)
            throw ApiError.Injected(injected);

        var ns = resource.Namespaced ? route.Namespace ?? "" : "";
        var name = route.Name ?? "";
        var query = request.Query;
        switch (verb)
        {
            case "get":
                var found = store.Get(resource, ns, name) ?? throw ApiError.NotFound(resource, name);
                await WriteAsync(context, HttpStatusCode.OK, route.Subresource == "scale" ? ScaleSubresource.From(found) : found).ConfigureAwait(false);
                break;
            case "list":
                var (items, version) = store.List(resource, resource.Namespaced ? route.Namespace : null, LabelSelector.Parse(query["labelSelector"]), FieldSelector.Parse(query["fieldSelector"]));
                await WriteAsync(context, HttpStatusCode.OK, new JsonObject
                {
                    ["kind"] = resource.ListKind,
                    ["apiVersion"] = resource.ApiVersion,
                    ["metadata"] = new JsonObject { ["resourceVersion"] = version.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                    ["items"] = new JsonArray([.. items]),
                }).ConfigureAwait(false);
                break;
            case "watch":
                await WatchAsync(context, resource, route).ConfigureAwait(false);
                break;
            case "create":
                var body = await ReadObjectAsync(request).ConfigureAwait(false);
                CheckNamespace(body, route);
                await WriteAsync(context, HttpStatusCode.Created, store.Create(resource, ns, body, keepStatus: false)).ConfigureAwait(false);
                break;
            case "update":
                await WriteAsync(context, HttpStatusCode.OK, await UpdateAsync(request, resource, route, ns, name).ConfigureAwait(false)).ConfigureAwait(false);
                break;
            case "patch":
                var patched = await ObjectPatch.ApplyAsync(store, request, resource, route.Subresource, ns, name).ConfigureAwait(false);
                await WriteAsync(context, HttpStatusCode.OK, patched).ConfigureAwait(false);
                break;
            case "delete":
                var options = await DeletionOptionsAsync(request, resource).ConfigureAwait(false);
                var (deleted, removed) = store.Delete(resource, ns, name, options);
                await WriteAsync(context, HttpStatusCode.OK, removed && !resource.ReturnsDeletedObject ? Success(resource, deleted) : deleted).ConfigureAwait(false);
                break;
            case "deletecollection":
                var collectionOptions = await DeletionOptionsAsync(request, resource).ConfigureAwait(false);
                var (victims, _) = store.List(resource, resource.Namespaced ? route.Namespace : null, LabelSelector.Parse(query["labelSelector"]), FieldSelector.Parse(query["fieldSelector"]));
                foreach (var victim in victims)
                {
                    var meta = ObjectStore.Metadata(victim);
                    try
                    {
                        store.Delete(resource, ObjectStore.Text(meta, "namespace") ?? "", ObjectStore.Text(meta, "name") ?? "", collectionOptions with { Uid = null, ResourceVersion = null });
                    }
                    catch (ApiError e) when (e.Code == HttpStatusCode.NotFound)
                    {
                        // Removed meanwhile (by a cascade from an earlier victim): nothing left to do.
                    }
                }

                await WriteAsync(context, HttpStatusCode.OK, Success(resource, null)).ConfigureAwait(false);
                break;
        }
    }

    private async Task<JsonObject> UpdateAsync(HttpRequest request, ApiResource resource, ApiRoute route, string ns, string name)
    {
        var body = await ReadObjectAsync(request).ConfigureAwait(false);
        CheckNamespace(body, route);
        var bodyName = ObjectStore.Text(ObjectStore.Metadata(body), "name");
        if (!string.IsNullOrEmpty(bodyName) && bodyName != name)
            throw ApiError.BadRequest($"the name of the object ({bodyName}) does not match the name on the URL ({name})");
        return route.Subresource switch
        {
            "status" => store.Update(resource, ns, name, _ => body, WriteScope.Status),
            "scale" => ScaleSubresource.From(store.Update(resource, ns, name, current => ScaleSubresource.Apply(current, body), WriteScope.Main)),
            _ => store.Update(resource, ns, name, _ => body, WriteScope.Main),
        };
    }

    private async Task WatchAsync(HttpContext context, ApiResource resource, ApiRoute route)
    {
        var query = context.Request.Query;
        var fieldSelector = query["fieldSelector"].ToString();
        if (route.Name is not null)
            fieldSelector = string.IsNullOrEmpty(fieldSelector) ? $"metadata.name={route.Name}" : $"{fieldSelector},metadata.name={route.Name}";
        var watch = store.Watch(resource, resource.Namespaced ? route.Namespace : null, LabelSelector.Parse(query["labelSelector"]), FieldSelector.Parse(fieldSelector), query["resourceVersion"]);
        try
        {
            using var ends = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
            if (int.TryParse(query["timeoutSeconds"], out var timeoutSeconds) && timeoutSeconds > 0)
                ends.CancelAfter(TimeSpan.FromSeconds(timeoutSeconds));
            context.Response.StatusCode = (int)HttpStatusCode.OK;
            context.Response.ContentType = "application/json";
            // Headers go out now: the client's list-with-watch call returns once it has them, before any event.
            await context.Response.StartAsync(ends.Token).ConfigureAwait(false);
            await context.Response.Body.FlushAsync(ends.Token).ConfigureAwait(false);
            await foreach (var line in watch.Lines.ReadAllAsync(ends.Token).ConfigureAwait(false))
            {
                await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"), ends.Token).ConfigureAwait(false);
                await context.Response.Body.FlushAsync(ends.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The watch timed out, the client went away or the server is stopping: the response just ends.
        }
        finally
        {
            store.StopWatching(watch);
        }
    }

    private static string Verb(string method, ApiRoute route, bool watch) => method switch
    {
        "GET" when watch => "watch",
        "GET" => route.Name is null ? "list" : "get",
        "POST" when route.Name is null => "create",
        "PUT" when route.Name is not null => "update",
        "PATCH" when route.Name is not null => "patch",
        "DELETE" => route.Name is null ? "deletecollection" : "delete",
        _ => throw ApiError.MethodNotAllowed($"the server does not allow this method on the requested resource ({method} {route.Plural})"),
    };

    private static void CheckNamespace(JsonObject body, ApiRoute route)
    {
        var bodyNamespace = ObjectStore.Text(ObjectStore.Metadata(body), "namespace");
        if (!string.IsNullOrEmpty(bodyNamespace) && route.Namespace is not null && bodyNamespace != route.Namespace)
            throw ApiError.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
    }

    private static async Task<DeletionOptions> DeletionOptionsAsync(HttpRequest request, ApiResource resource)
    {
        var body = await ReadNodeAsync(request).ConfigureAwait(false) as JsonObject;
        var policy = request.Query["propagationPolicy"].ToString();
        if (policy.Length == 0)
            policy = ObjectStore.Text(body ?? [], "propagationPolicy") ?? "";
        var orphanDependents = request.Query["orphanDependents"] is [var q] ? bool.TryParse(q, out var fromQuery) && fromQuery
            : body?["orphanDependents"] is JsonValue v && v.TryGetValue<bool>(out var fromBody) ? fromBody
            : (bool?)null;
        var orphan = policy switch
        {
            "Orphan" => true,
            "Background" or "Foreground" => false,
            _ => orphanDependents ?? resource.OrphansByDefault,
        };
        var preconditions = body?["preconditions"] as JsonObject;
        return new DeletionOptions(orphan, preconditions is null ? null : ObjectStore.Text(preconditions, "uid"), preconditions is null ? null : ObjectStore.Text(preconditions, "resourceVersion"));
    }

    internal static async Task<JsonNode?> ReadNodeAsync(HttpRequest request)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer).ConfigureAwait(false);
        return buffer.Length == 0 ? null : JsonNode.Parse(buffer.ToArray());
    }

    private static async Task<JsonObject> ReadObjectAsync(HttpRequest request) =>
        await ReadNodeAsync(request).ConfigureAwait(false) as JsonObject ?? throw ApiError.BadRequest("the request body must be a JSON object");

    private static JsonObject Success(ApiResource resource, JsonObject? deleted)
    {
        var status = new JsonObject { ["kind"] = "Status", ["apiVersion"] = "v1", ["metadata"] = new JsonObject(), ["status"] = "Success" };
        if (deleted is not null)
        {
            var meta = ObjectStore.Metadata(deleted);
            status["details"] = new JsonObject { ["name"] = ObjectStore.Text(meta, "name"), ["group"] = resource.Group, ["kind"] = resource.Plural, ["uid"] = ObjectStore.Text(meta, "uid") };
        }

        return status;
    }

    private static ApiError PageNotFound() =>
        new(HttpStatusCode.NotFound, "NotFound", "the server could not find the requested resource");

    private static async Task WriteAsync(HttpContext context, HttpStatusCode code, JsonObject body)
    {
        context.Response.StatusCode = (int)code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted).ConfigureAwait(false);
    }
}
