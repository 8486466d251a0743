using System.Text.Json;
using Distill.Mesh.Specs.Storage;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Training.Metrics;

/// <summary>
/// A run's metrics.jsonl: one <see cref="TrainEvent"/> per line (snake_case keys), the run's
/// history. Resume, the loss plots and <c>distill plot</c> read it back.
/// </summary>
public static class MetricsFile
{
    public const string Name = "metrics.jsonl";

    internal static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>The metrics file of the run in <paramref name="outputDir"/>.</summary>
    public static string PathIn(string outputDir) => Path.Combine(outputDir, Name);

    /// <summary>One event as its line (without the newline).</summary>
    public static string Line(TrainEvent e) => JsonSerializer.Serialize(e, Json);

    /// <summary>Replaces the file with <paramref name="history"/> (atomically).</summary>
    public static void Write(string outputDir, IEnumerable<TrainEvent> history) =>
        AtomicFile.WriteAllText(PathIn(outputDir), string.Concat(history.Select(e => Line(e) + "\n")));

    /// <summary>
    /// The history a resume restores: the events of steps 1..<paramref name="step"/> from the
    /// run's metrics file (lines after that step, which a killed run may have left torn, are not read).
    /// </summary>
    /// <exception cref="MetricsFormatException">The file is missing, unreadable or lacks one of those steps.</exception>
    public static List<TrainEvent> ReadUpTo(string outputDir, long step)
    {
        var path = PathIn(outputDir);
        if (step == 0)
            return [];
        if (!File.Exists(path))
            throw new MetricsFormatException($"{path}: no such file, but the run's checkpoint at step {step} needs its history; rerun with --restart to start over");
        var events = new List<TrainEvent>();
        var number = 0;
        foreach (var line in File.ReadLines(path))
        {
            if (events.Count == step)
                break;
            number++;
            var e = Parse(path, line, number);
            if (e.Step != events.Count + 1)
                throw new MetricsFormatException($"{path}: line {number} is step {e.Step} where step {events.Count + 1} was expected; the history up to the checkpoint at step {step} is incomplete (rerun with --restart to start over)");
            events.Add(e);
        }

        return events.Count == step ? events
            : throw new MetricsFormatException($"{path}: holds {events.Count} steps, but the run's checkpoint is at step {step}; the history is incomplete (rerun with --restart to start over)");
    }

    /// <summary>Reads and checks a metrics file: every line an event, steps increasing.</summary>
    /// <exception cref="MetricsFormatException">The file is missing, or a line is not an event (its number named).</exception>
    public static List<TrainEvent> Read(string path)
    {
        if (Directory.Exists(path))
            path = Path.Combine(path, Name);
        if (!File.Exists(path))
            throw new MetricsFormatException($"{path}: no such file (a run folder holds its metrics in {Name})");
        var events = new List<TrainEvent>();
        var number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (line.Length == 0)
                continue;
            var e = Parse(path, line, number);
            if (events.Count > 0 && e.Step <= events[^1].Step)
                throw new MetricsFormatException($"{path}: line {number} is step {e.Step}, not after the previous line's step {events[^1].Step}");
            events.Add(e);
        }

        return events.Count > 0 ? events : throw new MetricsFormatException($"{path}: holds no steps");
    }

    private static TrainEvent Parse(string path, string line, int number)
    {
        TrainEvent? e;
        try
        {
            e = JsonSerializer.Deserialize<TrainEvent>(line, Json);
        }
        catch (JsonException error)
        {
            throw new MetricsFormatException($"{path}: line {number} is not a metrics event ({error.Message})", error);
        }

        return e is { Step: >= 1 } ? e : throw new MetricsFormatException($"{path}: line {number} is not a metrics event (no step of at least 1)");
    }
}
