namespace Distill.Mesh.Training.Metrics;

/// <summary>A metrics file that is missing or cannot be read back; the message names the file (and line).</summary>
public sealed class MetricsFormatException(string message, Exception? inner = null) : Exception(message, inner);
