using System.CommandLine;
using Distill.Mesh.Training.Metrics;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill plot RUN_DIR [--compare RUN_DIR ...] [--out FILE]</c>: draws a run's metrics.jsonl
/// (loss parts, eval loss and perplexity, learning rate, tokens/s), or overlays several runs
/// (KD vs SFT, rkl vs fkl) in one figure.
/// </summary>
internal static class PlotCommand
{
    public static Command Create()
    {
        var run = new Argument<string>("run") { Description = "a run's output folder (or its metrics.jsonl)" };
        var compare = new Option<string[]>("--compare") { Description = "more runs to overlay", AllowMultipleArgumentsPerToken = true };
        var output = new Option<string?>("--out") { Description = "the figure, .png or .svg (default: the run's loss.png and loss.svg; with --compare, compare.png and compare.svg here)" };
        var command = new Command("plot", "Plot a run's metrics, or compare runs") { run, compare, output };
        command.SetAction((parse, stdout) =>
        {
            var folders = new[] { parse.GetValue(run)! }.Concat(parse.GetValue(compare) ?? []).Select(Folder).ToList();
            var labels = Labels(folders);
            var runs = folders.Select((f, i) => new MetricsPlot.Run(labels[i], MetricsFile.Read(MetricsFile.PathIn(f)))).ToList();
            var title = string.Join(" vs ", labels);
            var targets = parse.GetValue(output) is { } path ? [Path.GetFullPath(path)]
                : runs.Count == 1 ? new[] { "loss.png", "loss.svg" }.Select(n => Path.Combine(folders[0], n)).ToArray()
                : new[] { "compare.png", "compare.svg" }.Select(Path.GetFullPath).ToArray();
            foreach (var target in targets)
            {
                MetricsPlot.Write(target, runs, title);
                stdout.WriteLine($"wrote {target}");
            }

            return 0;
        });
        return command;
    }

    /// <summary>A run folder from an argument that names the folder or its metrics file.</summary>
    private static string Folder(string argument)
    {
        var full = Path.GetFullPath(argument);
        return File.Exists(full) && Path.GetFileName(full) == MetricsFile.Name ? Path.GetDirectoryName(full)! : full;
    }

    /// <summary>Each run's folder name; with the parent folder too where two names are the same.</summary>
    private static string[] Labels(List<string> folders)
    {
        var names = folders.Select(f => Path.GetFileName(Path.TrimEndingDirectorySeparator(f))).ToArray();
        return names.Select((n, i) => names.Count(m => m == n) > 1
            ? $"{Path.GetFileName(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(folders[i])))}/{n}" : n).ToArray();
    }
}
