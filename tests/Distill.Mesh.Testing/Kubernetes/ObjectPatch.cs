using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>
/// PATCH by content type: JSON patch, merge patch, strategic merge patch (not for custom resources, as on a real
/// server) and server-side apply (approximated as a merge patch that creates a missing object). The patched object
/// goes through the same update path as a PUT, so a resourceVersion in the patch is a precondition.
/// </summary>
internal static class ObjectPatch
{
    public static async Task<JsonObject> ApplyAsync(ObjectStore store, HttpRequest request, ApiResource resource, string? subresource, string ns, string name)
    {
        var contentType = (request.ContentType ?? "").Split(';')[0].Trim().ToLowerInvariant();
        var body = await ApiRequestHandler.ReadNodeAsync(request).ConfigureAwait(false) ?? throw ApiError.BadRequest("the patch body is empty");
        Func<JsonNode, JsonNode?> patch = contentType switch
        {
            "application/json-patch+json" => document => JsonPatch.Apply(document, body as JsonArray ?? throw ApiError.BadRequest("a JSON patch must be an array of operations")),
            "application/merge-patch+json" => document => MergePatch.Apply(document, body, strategic: false),
            "application/strategic-merge-patch+json" when IsCustom(resource) =>
                throw new ApiError(HttpStatusCode.UnsupportedMediaType, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"),
            "application/strategic-merge-patch+json" => document => MergePatch.Apply(document, body, strategic: true),
            "application/apply-patch+yaml" or "application/apply-patch+json" => document => MergePatch.Apply(document, body, strategic: false),
            _ => throw new ApiError(HttpStatusCode.UnsupportedMediaType, "UnsupportedMediaType", $"the body of the request was in an unknown format ({contentType})"),
        };

        JsonObject Patched(JsonNode document) =>
            patch(document) as JsonObject ?? throw ApiError.Invalid("the patched object is not a JSON object");

        if (contentType.StartsWith("application/apply-patch", StringComparison.Ordinal) && subresource is null && store.Get(resource, ns, name) is null)
        {
            var created = Patched(new JsonObject());
            ObjectStore.Metadata(created)["name"] = name;
            return store.Create(resource, ns, created, keepStatus: false);
        }

        return subresource switch
        {
            "scale" => ScaleSubresource.From(store.Update(resource, ns, name, current => ScaleSubresource.Apply(current, Patched(ScaleSubresource.From(current))), WriteScope.Main)),
            "status" => store.Update(resource, ns, name, Patched, WriteScope.Status),
            _ => store.Update(resource, ns, name, Patched, WriteScope.Main),
        };
    }

    private static bool IsCustom(ApiResource resource) => !ApiResource.BuiltIn.Contains(resource);
}
