using Distill.Mesh.Contracts.Common.V1;
using Distill.Mesh.Contracts.Extractor.V1;
using Distill.Mesh.Modeling.Extraction;
using static TorchSharp.torch;

namespace Distill.Mesh.Clients.Extractor;

/// <summary>Conversions between the extractor's messages and the engine's options and reports.</summary>
public static class ExtractionMessages
{
    public static ExtractionOptions ToOptions(ExtractOptions? message)
    {
        message ??= new ExtractOptions();
        var defaults = new ExtractionOptions();
        return new ExtractionOptions
        {
            Rank = message.Rank == 0 ? defaults.Rank : message.Rank,
            RankPattern = new Dictionary<string, int>(message.RankPattern),
            Alpha = message.HasLoraAlpha ? message.LoraAlpha : null,
            Svd = message.Svd == Contracts.Extractor.V1.SvdMethod.Randomized ? Modeling.Extraction.SvdMethod.Randomized : Modeling.Extraction.SvdMethod.Exact,
            Oversample = message.HasOversample ? message.Oversample : defaults.Oversample,
            PowerIterations = message.HasPowerIterations ? message.PowerIterations : defaults.PowerIterations,
            Seed = message.Seed,
            TargetModules = message.TargetModules.Count == 0 ? null : [.. message.TargetModules],
            IncludeLmHead = message.IncludeLmHead,
            IncludeEmbeddings = message.IncludeEmbeddings,
            AdapterDtype = message.AdapterDtype switch
            {
                DType.Unspecified or DType.F32 => ScalarType.Float32,
                DType.F16 => ScalarType.Float16,
                DType.Bf16 => ScalarType.BFloat16,
                DType.F64 => ScalarType.Float64,
                var other => throw new ArgumentException($"adapter_dtype {other} is not a float type"),
            },
            ReportOptimum = message.HasReportOptimum ? message.ReportOptimum : null,
            Shards = message.Shards == 0 ? 1 : message.Shards,
        };
    }

    public static ExtractOptions ToMessage(ExtractionOptions options)
    {
        var message = new ExtractOptions
        {
            Rank = options.Rank,
            Svd = options.Svd == Modeling.Extraction.SvdMethod.Randomized ? Contracts.Extractor.V1.SvdMethod.Randomized : Contracts.Extractor.V1.SvdMethod.Exact,
            Oversample = options.Oversample,
            PowerIterations = options.PowerIterations,
            Seed = options.Seed,
            IncludeLmHead = options.IncludeLmHead,
            IncludeEmbeddings = options.IncludeEmbeddings,
            AdapterDtype = options.AdapterDtype switch
            {
                ScalarType.Float16 => DType.F16,
                ScalarType.BFloat16 => DType.Bf16,
                ScalarType.Float64 => DType.F64,
                _ => DType.F32,
            },
            Shards = options.Shards,
        };
        message.RankPattern.Add(options.RankPattern.ToDictionary());
        if (options.Alpha is { } alpha)
            message.LoraAlpha = alpha;
        if (options.ReportOptimum is { } optimum)
            message.ReportOptimum = optimum;
        if (options.TargetModules is { } targets)
            message.TargetModules.Add(targets);
        return message;
    }

    public static TensorResult ToMessage(TensorReport report)
    {
        var message = new TensorResult
        {
            Name = report.Name,
            Module = report.Module,
            Source = report.Source,
            Projection = report.Projection,
            Rank = report.Rank,
            Alpha = report.Alpha,
            RelativeError = report.RelativeError,
            DeltaNorm = report.DeltaNorm,
            Skipped = report.Skipped ?? "",
        };
        message.Shape.Add(report.Shape);
        if (report.OptimalRelativeError is { } optimum)
            message.OptimalRelativeError = optimum;
        return message;
    }

    /// <summary>A streamed tensor result back as the engine's report (the method is not on the wire).</summary>
    public static TensorReport ToReport(TensorResult t) =>
        new(t.Name, t.Module, [.. t.Shape], t.Source, t.Projection, t.Rank, t.Alpha, "", t.RelativeError,
            t.HasOptimalRelativeError ? t.OptimalRelativeError : null, t.DeltaNorm, t.Skipped.Length == 0 ? null : t.Skipped);

    public static ExtractEvent ToMessage(ExtractionEvent e) => new()
    {
        Kind = e.Kind,
        Shard = e.Shard,
        Done = e.Done,
        Total = e.Total,
        Tensor = e.Tensor is null ? null : ToMessage(e.Tensor),
        Message = e.Message,
    };

    public static ConsolidateResponse ToMessage(ExtractionSummary summary, string outputDir) => new()
    {
        OutputDir = outputDir,
        Modules = summary.Tensors.Count(t => t.Skipped is null),
        NotCarried = summary.NotCarried.Count,
        AdapterParameters = summary.AdapterParameters,
        SizeRatio = summary.SizeRatio,
        LayerMap = { summary.LayerMap },
        ReportJson = File.ReadAllText(Path.Combine(outputDir, LoraExtractor.ReportFileName)),
    };
}
