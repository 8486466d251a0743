using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>
/// Maps exceptions that escape a handler to precise status codes; anything unexpected becomes
/// Internal (logged, with no stack trace sent to the client).
/// </summary>
public sealed class ExceptionInterceptor(ILogger<ExceptionInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw Map(e, context);
        }
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(requestStream, context);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw Map(e, context);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw Map(e, context);
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(requestStream, responseStream, context);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw Map(e, context);
        }
    }

    private RpcException Map(Exception e, ServerCallContext context)
    {
        var status = e switch
        {
            OperationCanceledException when context.CancellationToken.IsCancellationRequested => context.Deadline <= DateTime.UtcNow ? StatusCode.DeadlineExceeded : StatusCode.Cancelled,
            ArgumentException or FormatException => StatusCode.InvalidArgument,
            KeyNotFoundException or FileNotFoundException or DirectoryNotFoundException => StatusCode.NotFound,
            InvalidOperationException => StatusCode.FailedPrecondition,
            TimeoutException => StatusCode.DeadlineExceeded,
            _ => StatusCode.Internal,
        };
        if (status == StatusCode.Internal)
            logger.LogError(e, "Unhandled error in {Method}", context.Method);
        return new RpcException(new Status(status, status == StatusCode.Internal ? "internal error" : e.Message));
    }
}
