using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Training.Metrics;

/// <summary>
/// metrics.jsonl: each step appended as a line; at the start of a session the file is rewritten
/// from the history (a resumed run logs the steps after its checkpoint once, not twice).
/// </summary>
public sealed class JsonlMetricLogger(string outputDir) : IMetricLogger
{
    public void Start(IReadOnlyList<TrainEvent> history, string configJson) => MetricsFile.Write(outputDir, history);

    public void Log(TrainEvent e) => File.AppendAllText(MetricsFile.PathIn(outputDir), MetricsFile.Line(e) + "\n");

    public void Flush(IReadOnlyList<TrainEvent> history) => MetricsFile.Write(outputDir, history);

    public void Dispose()
    {
    }
}
