using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Grpc.Core;

namespace Distill.Mesh.Teacher.Scoring;

/// <summary>
/// The teacher's instruments (meter <see cref="MeterName"/>). Request durations follow the
/// OpenTelemetry GenAI server conventions (<c>gen_ai.server.*</c>, with <c>gen_ai.operation.name</c>
/// "score" for a sequence's signal and "text_completion" for generation); the rest are
/// <c>distill.teacher.*</c>. Every series carries the teacher (its model folder's name).
/// </summary>
public static class TeacherMetrics
{
    public const string MeterName = "Distill.Mesh.Teacher";
    public const string Score = "score";
    public const string Generate = "text_completion";

    private static readonly Meter Meter = new(MeterName);
    private static readonly double[] LatencyBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    private static readonly Histogram<double> RequestDuration = Meter.CreateHistogram("gen_ai.server.request.duration", "s", "Time from a request's arrival to its answer (a scored sequence, or a whole generation)",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
    private static readonly Histogram<double> TimePerOutputToken = Meter.CreateHistogram("gen_ai.server.time_per_output_token", "s", "Generation: time per generated token after the first",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
    private static readonly Histogram<double> TimeToFirstToken = Meter.CreateHistogram("gen_ai.server.time_to_first_token", "s", "Generation: time to the first generated token",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
    private static readonly Histogram<double> ForwardDuration = Meter.CreateHistogram("distill.teacher.forward.duration", "s", "Time of one batched forward pass",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
    private static readonly Histogram<long> BatchTokens = Meter.CreateHistogram("distill.teacher.batch.tokens", "{token}", "Tokens packed into one forward pass",
        advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [16, 64, 256, 1024, 4096, 16384, 65536] });
    private static readonly Counter<long> TokensScored = Meter.CreateCounter<long>("distill.teacher.tokens", "{token}", "Tokens run through the teacher's forward");
    private static readonly Counter<long> BytesSent = Meter.CreateCounter<long>("distill.teacher.sent", "By", "Bytes of signal sent to clients");
    private static readonly Counter<long> Rejected = Meter.CreateCounter<long>("distill.teacher.rejected", "{request}", "Requests refused, by gRPC status code");
    // Observed, not recorded: a scrape that starts after the model loaded still sees it.
    private static readonly ConcurrentDictionary<string, (double Load, double WarmUp)> Models = new(StringComparer.Ordinal);

    static TeacherMetrics()
    {
        Meter.CreateObservableGauge("distill.teacher.model.load.duration", () => Models.Select(m => new Measurement<double>(m.Value.Load, Tags(m.Key))), "s", "Time the model took to load");
        Meter.CreateObservableGauge("distill.teacher.model.warmup.duration", () => Models.Select(m => new Measurement<double>(m.Value.WarmUp, Tags(m.Key))), "s", "Time the warm-up forward pass took");
        Meter.CreateObservableGauge("distill.teacher.ready", () => Models.Select(m => new Measurement<int>(1, Tags(m.Key))), null, "1 once the model is loaded and warmed up (no series before)");
    }

    /// <summary>The teacher label: the model folder's name.</summary>
    public static string Label(string? model) => string.IsNullOrWhiteSpace(model) ? "in-process" : Path.GetFileName(Path.TrimEndingDirectorySeparator(model));

    /// <summary>Observes the scoring queue's depth (requests waiting) of <paramref name="teacher"/>.</summary>
    public static void ObserveQueue(string teacher, Func<int> depth) =>
        Meter.CreateObservableGauge("distill.teacher.queue.depth", () => new Measurement<int>(depth(), new KeyValuePair<string, object?>("teacher", teacher)), "{request}", "Requests waiting in the scoring queue");

    public static void Loaded(string teacher, TimeSpan load, TimeSpan warmUp) => Models[teacher] = (load.TotalSeconds, warmUp.TotalSeconds);

    public static void Forward(string teacher, long tokens, TimeSpan duration)
    {
        var tags = Tags(teacher);
        ForwardDuration.Record(duration.TotalSeconds, tags);
        BatchTokens.Record(tokens, tags);
        TokensScored.Add(tokens, tags);
    }

    /// <summary>One answered request: <paramref name="operation"/> is <see cref="Score"/> or <see cref="Generate"/>.</summary>
    public static void Request(string teacher, string operation, TimeSpan duration, long bytes = 0, string? error = null)
    {
        var tags = new TagList { { "gen_ai.operation.name", operation }, { "gen_ai.request.model", teacher } };
        if (error is not null)
            tags.Add("error.type", error);
        RequestDuration.Record(duration.TotalSeconds, tags);
        if (bytes > 0)
            BytesSent.Add(bytes, Tags(teacher));
    }

    public static void Generated(string teacher, TimeSpan firstToken, TimeSpan rest, int tokens)
    {
        var tags = new TagList { { "gen_ai.operation.name", Generate }, { "gen_ai.request.model", teacher } };
        TimeToFirstToken.Record(firstToken.TotalSeconds, tags);
        if (tokens > 1)
            TimePerOutputToken.Record(rest.TotalSeconds / (tokens - 1), tags);
    }

    public static void Refused(string teacher, StatusCode code) => Rejected.Add(1, new TagList { { "teacher", teacher }, { "code", code.ToString() } });

    private static TagList Tags(string teacher) => new() { { "teacher", teacher } };
}
