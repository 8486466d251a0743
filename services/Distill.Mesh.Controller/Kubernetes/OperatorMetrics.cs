using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Distill.Mesh.Controller.Kubernetes;

/// <summary>
/// The operator's metrics (meter Distill.Mesh.Controller): reconciles by result and their
/// duration, runs by phase, stages whose GPU pods wait for a node, and teacher replicas.
/// </summary>
public sealed class OperatorMetrics : IDisposable
{
    public const string MeterName = "Distill.Mesh.Controller";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _reconciles;
    private readonly Histogram<double> _duration;
    private readonly ConcurrentDictionary<string, string> _phases = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _pending = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _teachers = new(StringComparer.Ordinal);

    public OperatorMetrics()
    {
        _reconciles = _meter.CreateCounter<long>("distill.operator.reconciles", "{reconcile}", "Reconciles of DistillationRuns, by result");
        _duration = _meter.CreateHistogram<double>("distill.operator.reconcile.duration", "s", "Time one reconcile took");
        _meter.CreateObservableGauge("distill.operator.runs", () => _phases.GroupBy(p => p.Value).Select(g => new Measurement<int>(g.Count(), new KeyValuePair<string, object?>("phase", g.Key))),
            "{run}", "DistillationRuns by phase");
        _meter.CreateObservableGauge("distill.operator.pods.pending_gpu", () => _pending.Count(p => p.Value), "{run}", "Runs whose GPU pods wait for a node or a quota");
        _meter.CreateObservableGauge("distill.operator.teacher.replicas", () => _teachers.Select(t => new Measurement<int>(t.Value, new KeyValuePair<string, object?>("teacher", t.Key))),
            "{replica}", "Replicas of each teacher Deployment");
    }

    private long _reconciled;

    /// <summary>Reconciles this replica has run (any result).</summary>
    public long ReconcileCount => Interlocked.Read(ref _reconciled);

    public void Reconciled(double seconds, bool failed)
    {
        Interlocked.Increment(ref _reconciled);
        var result = new KeyValuePair<string, object?>("result", failed ? "error" : "ok");
        _reconciles.Add(1, result);
        _duration.Record(seconds, result);
    }

    public void Observe(string run, string phase) => _phases[run] = phase;

    public void Forget(string run)
    {
        _phases.TryRemove(run, out _);
        _pending.TryRemove(run, out _);
    }

    public void SetPending(string run, bool pending) => _pending[run] = pending;

    public void SetTeacherReplicas(string teacher, int replicas) => _teachers[teacher] = replicas;

    public void Dispose() => _meter.Dispose();
}
