using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Distill.Mesh.Trainer.Runs;

/// <summary>
/// The stages of the trainer's runs (meter <see cref="MeterName"/>): which stage of which run is
/// running (the dashboards' stage timeline), each stage's progress, and stage durations.
/// </summary>
public static class StageMetrics
{
    public const string MeterName = "Distill.Mesh.Trainer";

    private static readonly Meter Meter = new(MeterName);
    private static readonly Gauge<int> Running = Meter.CreateGauge<int>("distill.run.stage.running", null, "1 while the stage of the run runs, else 0");
    private static readonly Gauge<double> Progress = Meter.CreateGauge<double>("distill.run.stage.progress", null, "Share of the stage's items done (0..1)");
    private static readonly Histogram<double> Duration = Meter.CreateHistogram("distill.run.stage.duration", "s", "Wall time of finished stages, by stage and end state",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [1, 5, 15, 60, 300, 900, 3600, 14400, 86400] });

    public static void Record(string run, StageRecord stage)
    {
        var tags = new TagList { { "run", run }, { "stage", stage.Name } };
        Running.Record(stage.State == StageState.Running ? 1 : 0, tags);
        if (stage.Total > 0)
            Progress.Record(Math.Clamp((double)stage.Done / stage.Total, 0, 1), tags);
        if (stage is { State: StageState.Succeeded or StageState.Failed or StageState.Cancelled, Started: { } started, Ended: { } ended })
            Duration.Record((ended - started).TotalSeconds, new TagList { { "stage", stage.Name }, { "state", stage.State.ToString() } });
    }
}
