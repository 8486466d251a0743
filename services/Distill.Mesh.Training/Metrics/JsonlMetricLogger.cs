using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Training.Metrics;

/// <summary>
/// metrics.jsonl: each step appended as a line; at the start of a session the file is rewritten
/// from the history (a resumed run logs the steps after its checkpoint once, not twice). With no
/// history there is no file until the first step, so a run that fails before it leaves none.
/// </summary>
public sealed class JsonlMetricLogger(string outputDir) : IMetricLogger
{
    public void Start(IReadOnlyList<TrainEvent> history, string configJson) => Flush(history);

    public void Log(TrainEvent e) => File.AppendAllText(MetricsFile.PathIn(outputDir), MetricsFile.Line(e) + "\n");

    public void Flush(IReadOnlyList<TrainEvent> history)
    {
        if (history.Count > 0)
            MetricsFile.Write(outputDir, history);
        else
            File.Delete(MetricsFile.PathIn(outputDir));
    }

    public void Dispose()
    {
    }
}
