using System.Diagnostics;
using OpenTelemetry;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>The mesh's activity source: spans the services create themselves (cache, scoring, runs).</summary>
public static class MeshTelemetry
{
    public const string Name = "Distill.Mesh";

    /// <summary>The span attribute and baggage key that carry a run's id across the mesh.</summary>
    public const string RunIdKey = "distill.run_id";

    public static readonly ActivitySource Source = new(Name);

    /// <summary>
    /// Marks <paramref name="activity"/> (and, through W3C baggage, every span below it in this and
    /// the services it calls) as part of run <paramref name="runId"/>.
    /// </summary>
    public static Activity? ForRun(this Activity? activity, string runId)
    {
        if (activity is null || string.IsNullOrEmpty(runId))
            return activity;
        activity.SetTag(RunIdKey, runId);
        activity.SetBaggage(RunIdKey, runId);
        return activity;
    }
}

/// <summary>Copies the run id from the baggage onto every span (ASP.NET Core, gRPC client, HTTP and our own), so any span can be found by run.</summary>
public sealed class RunIdProcessor : BaseProcessor<Activity>
{
    public override void OnStart(Activity data) => Copy(data);

    // The span that learned the id while it ran (the controller's Submit) is tagged at its end.
    public override void OnEnd(Activity data) => Copy(data);

    private static void Copy(Activity activity)
    {
        if (activity.GetTagItem(MeshTelemetry.RunIdKey) is null && activity.GetBaggageItem(MeshTelemetry.RunIdKey) is { Length: > 0 } runId)
            activity.SetTag(MeshTelemetry.RunIdKey, runId);
    }
}
