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

/// <summary>Rejects mutating calls without the configured bearer token (Unauthenticated).</summary>
public sealed class BearerTokenInterceptor(IOptions<MeshOptions> options, MutatingMethods mutating) : Interceptor
{
    private void Check(ServerCallContext context)
    {
        var token = options.Value.AuthToken;
        if (string.IsNullOrEmpty(token) || !mutating.Contains(context.Method))
            return;
        var header = context.RequestHeaders.GetValue(MeshAuth.Header);
        if (header is null || !header.StartsWith(MeshAuth.Scheme, StringComparison.Ordinal)
            || !System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(header[MeshAuth.Scheme.Length..]), System.Text.Encoding.UTF8.GetBytes(token)))
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
