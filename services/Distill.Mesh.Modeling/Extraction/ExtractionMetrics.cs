using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Distill.Mesh.Modeling.Extraction;

/// <summary>The extractor's instruments (meter <see cref="MeterName"/>): tensors done and factorisation time, by SVD kind.</summary>
public static class ExtractionMetrics
{
    public const string MeterName = "Distill.Mesh.Extraction";

    private static readonly Meter Meter = new(MeterName);
    private static readonly Counter<long> Tensors = Meter.CreateCounter<long>("distill.extract.tensors", "{tensor}", "Tensors extracted (or skipped), by SVD kind");
    private static readonly Histogram<double> Factorization = Meter.CreateHistogram("distill.extract.factorization.duration", "s", "Time to project and factorise one tensor",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300] });

    public static void Tensor(TensorReport report, TimeSpan duration)
    {
        var tags = new TagList { { "svd", report.Skipped is null ? report.Svd : "skipped" } };
        Tensors.Add(1, tags);
        if (report.Skipped is null)
            Factorization.Record(duration.TotalSeconds, tags);
    }
}
