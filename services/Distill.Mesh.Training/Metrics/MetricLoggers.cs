using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Training.Metrics;

/// <summary>The loggers <c>logging.backends</c> names, used as one.</summary>
public sealed class MetricLoggers : IMetricLogger
{
    private readonly List<IMetricLogger> _loggers;

    private MetricLoggers(List<IMetricLogger> loggers) => _loggers = loggers;

    /// <summary>The loggers of <paramref name="config"/>'s run (its backends are validated names).</summary>
    public static MetricLoggers For(TrainConfig config) => new(config.Logging.Backends.Select(b => b.ToLowerInvariant() switch
    {
        "jsonl" => (IMetricLogger)new JsonlMetricLogger(config.OutputDir),
        "tensorboard" => new TensorBoardLogger(config.OutputDir),
        _ => throw new ConfigException($"logging.backends: '{b}' is not one of {string.Join(", ", ConfigNames.LoggingBackends)}"),
    }).ToList());

    public void Start(IReadOnlyList<TrainEvent> history, string configJson) => _loggers.ForEach(l => l.Start(history, configJson));

    public void Log(TrainEvent e) => _loggers.ForEach(l => l.Log(e));

    public void Flush(IReadOnlyList<TrainEvent> history) => _loggers.ForEach(l => l.Flush(history));

    public void Dispose() => _loggers.ForEach(l => l.Dispose());
}
