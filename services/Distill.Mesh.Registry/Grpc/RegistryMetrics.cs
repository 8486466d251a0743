using System.Diagnostics;
using System.Diagnostics.Metrics;
using Grpc.Core;

namespace Distill.Mesh.Registry.Grpc;

/// <summary>The registry's instruments (meter <see cref="MeterName"/>): pushes and pulls with their bytes and durations, and refused uploads.</summary>
public static class RegistryMetrics
{
    public const string MeterName = "Distill.Mesh.Registry";
    public const string Push = "push";
    public const string Pull = "pull";

    private static readonly Meter Meter = new(MeterName);
    private static readonly Counter<long> Operations = Meter.CreateCounter<long>("distill.registry.operations", "{operation}", "Pushes and pulls, by operation and result (ok or the gRPC status code)");
    private static readonly Counter<long> Bytes = Meter.CreateCounter<long>("distill.registry.bytes", "By", "Artifact bytes received (push) and sent (pull)");
    private static readonly Histogram<double> Duration = Meter.CreateHistogram("distill.registry.operation.duration", "s", "Time of one push or pull",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300] });
    private static readonly Counter<long> ValidationFailures = Meter.CreateCounter<long>("distill.registry.validation_failures", "{upload}", "Uploads refused (bad manifest, size or hash), by gRPC status code");

    /// <summary>Runs <paramref name="call"/>, counting it with the bytes it moved.</summary>
    public static async Task<T> Measure<T>(string operation, Func<Action<long>, Task<T>> call)
    {
        var started = Stopwatch.GetTimestamp();
        long bytes = 0;
        var result = "ok";
        try
        {
            return await call(b => bytes += b);
        }
        catch (RpcException e)
        {
            result = e.StatusCode.ToString();
            if (operation == Push && e.StatusCode is StatusCode.InvalidArgument or StatusCode.DataLoss or StatusCode.OutOfRange or StatusCode.FailedPrecondition)
                ValidationFailures.Add(1, new TagList { { "code", result } });
            throw;
        }
        catch (Exception)
        {
            result = "error";
            throw;
        }
        finally
        {
            var tags = new TagList { { "operation", operation }, { "result", result } };
            Operations.Add(1, tags);
            Duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
            Bytes.Add(bytes, new TagList { { "operation", operation } });
        }
    }
}
