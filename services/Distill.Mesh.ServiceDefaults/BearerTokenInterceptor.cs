using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>Which methods change state (and so need the bearer token when one is configured).</summary>
public sealed class MutatingMethods
{
    private readonly HashSet<string> _methods = new(StringComparer.Ordinal);

    /// <summary>Adds full method names, e.g. "/distill.trainer.v1.TrainerService/Start".</summary>
    public MutatingMethods Add(params string[] methods)
    {
        foreach (var method in methods)
            _methods.Add(method);
        return this;
    }

    public bool Contains(string method) => _methods.Contains(method);
}

/// <summary>Rejects calls without the configured bearer token (Unauthenticated): mutating ones, or all but health checks (Mesh:AuthScope).</summary>
public sealed class BearerTokenInterceptor(IOptions<MeshOptions> options, MutatingMethods mutating) : Interceptor
{
    private void Check(ServerCallContext context)
    {
        var token = options.Value.AuthToken;
        if (string.IsNullOrEmpty(token))
            return;
        var guarded = options.Value.AuthScope == MeshAuth.ScopeAll
            ? !context.Method.StartsWith("/grpc.health.v1.Health/", StringComparison.Ordinal)
            : mutating.Contains(context.Method);
        if (!guarded)
            return;
        // A call may carry the token twice (its channel's and its own headers; HTTP joins repeated
        // headers with commas): any one that matches will do.
        var expected = System.Text.Encoding.UTF8.GetBytes(token);
        var presented = context.RequestHeaders.Where(h => h.Key == MeshAuth.Header && !h.IsBinary)
            .SelectMany(h => h.Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        if (!presented.Any(value => value.StartsWith(MeshAuth.Scheme, StringComparison.Ordinal)
                && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(value[MeshAuth.Scheme.Length..]), expected)))
            throw new RpcException(new Status(StatusCode.Unauthenticated, $"{context.Method} needs a bearer token"));
    }

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, responseStream, context);
    }
}
