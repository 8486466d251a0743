using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Training.Metrics;

/// <summary>
/// Where a run's step metrics go (chosen with <c>logging.backends</c>): metrics.jsonl always,
/// TensorBoard event files when asked. One logger lives for one session of a run (a fresh start
/// or a resume).
/// </summary>
public interface IMetricLogger : IDisposable
{
    /// <summary>
    /// Opens the session: <paramref name="history"/> is what the run already logged (empty on a
    /// fresh start; after a resume, the steps up to the checkpoint); <paramref name="configJson"/> the run's resolved config.
    /// </summary>
    void Start(IReadOnlyList<TrainEvent> history, string configJson);

    /// <summary>Logs one optimizer step.</summary>
    void Log(TrainEvent e);

    /// <summary>Makes everything logged so far durable (called at checkpoints and at the end).</summary>
    void Flush(IReadOnlyList<TrainEvent> history);
}
