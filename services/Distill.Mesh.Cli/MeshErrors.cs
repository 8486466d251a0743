using Grpc.Core;

namespace Distill.Mesh.Cli;

/// <summary>RPC failures as one line a user can act on: which service, at which address, and what it said. Never a stack trace.</summary>
internal static class MeshErrors
{
    public static string Describe(RpcException e, string service, string address) => e.StatusCode switch
    {
        StatusCode.Unavailable when e.Status.Detail.Contains(" at http", StringComparison.Ordinal) || e.Status.Detail.Contains(" at https", StringComparison.Ordinal)
            => $"the {service} at {address} could not reach another service: {e.Status.Detail}",
        StatusCode.Unavailable => $"the {service} at {address} is unreachable (is it running? `distill up` starts the mesh){Detail(e)}",
        StatusCode.DeadlineExceeded => $"the {service} at {address} did not answer in time: {e.Status.Detail}",
        StatusCode.Unauthenticated => $"the {service} at {address} wants a bearer token (--token, DISTILL_TOKEN or DISTILL_TOKEN_FILE): {e.Status.Detail}",
        StatusCode.Cancelled => "cancelled",
        _ => $"{e.StatusCode} from the {service} at {address}: {e.Status.Detail}",
    };

    /// <summary>The status detail, unless it is gRPC's generic "Error connecting to subchannel." that says nothing more.</summary>
    private static string Detail(RpcException e) =>
        e.Status.Detail.StartsWith("Error connecting to subchannel", StringComparison.Ordinal) ? (e.Status.DebugException?.InnerException?.Message is { } why ? $": {why}" : "") : $": {e.Status.Detail}";

    /// <summary>Runs <paramref name="body"/>; RPC failures and bad input become "error: …" on <paramref name="error"/> and exit code 1.</summary>
    public static async Task<int> GuardAsync(TextWriter error, string service, string address, Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
        {
            return 130;
        }
        catch (RpcException e)
        {
            error.WriteLine($"error: {Describe(e, service, address)}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            return 130;
        }
        catch (Exception e) when (e is Specs.Configuration.ConfigException or ArgumentException or FormatException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
