using System.Net;
using System.Text.Json.Nodes;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>A request the API server refuses; it becomes a <c>Status</c> object with the matching HTTP code.</summary>
internal sealed class ApiError(HttpStatusCode code, string reason, string message) : Exception(message)
{
    public HttpStatusCode Code { get; } = code;

    public string Reason { get; } = reason;

    public static ApiError NotFound(ApiResource type, string name) =>
        new(HttpStatusCode.NotFound, "NotFound", $"{type.QualifiedName} \"{name}\" not found");

    public static ApiError AlreadyExists(ApiResource type, string name) =>
        new(HttpStatusCode.Conflict, "AlreadyExists", $"{type.QualifiedName} \"{name}\" already exists");

    public static ApiError Conflict(ApiResource type, string name, string why) =>
        new(HttpStatusCode.Conflict, "Conflict", $"Operation cannot be fulfilled on {type.QualifiedName} \"{name}\": {why}");

    public static ApiError Invalid(string message) => new(HttpStatusCode.UnprocessableEntity, "Invalid", message);

    public static ApiError BadRequest(string message) => new(HttpStatusCode.BadRequest, "BadRequest", message);

    public static ApiError MethodNotAllowed(string message) => new(HttpStatusCode.MethodNotAllowed, "MethodNotAllowed", message);

    public static ApiError Expired(long requested, long oldest) =>
        new(HttpStatusCode.Gone, "Expired", $"too old resource version: {requested} ({oldest})");

    /// <summary>An injected failure: the reason the real server gives for that code.</summary>
    public static ApiError Injected(HttpStatusCode code) => new(code, ReasonFor(code), $"injected failure ({(int)code})");

    public JsonObject ToStatus() => Status(Code, Reason, Message);

    public static JsonObject Status(HttpStatusCode code, string reason, string message) => new()
    {
        ["kind"] = "Status",
        ["apiVersion"] = "v1",
        ["metadata"] = new JsonObject(),
        ["status"] = "Failure",
        ["message"] = message,
        ["reason"] = reason,
        ["code"] = (int)code,
    };

    private static string ReasonFor(HttpStatusCode code) => code switch
    {
        HttpStatusCode.BadRequest => "BadRequest",
        HttpStatusCode.Unauthorized => "Unauthorized",
        HttpStatusCode.Forbidden => "Forbidden",
        HttpStatusCode.NotFound => "NotFound",
        HttpStatusCode.MethodNotAllowed => "MethodNotAllowed",
        HttpStatusCode.Conflict => "Conflict",
        HttpStatusCode.Gone => "Expired",
        HttpStatusCode.UnprocessableEntity => "Invalid",
        HttpStatusCode.TooManyRequests => "TooManyRequests",
        HttpStatusCode.GatewayTimeout => "Timeout",
        HttpStatusCode.ServiceUnavailable => "ServiceUnavailable",
        _ => "InternalError",
    };
}
