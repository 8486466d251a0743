using System.Globalization;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Training.Metrics;

/// <summary>
/// TensorBoard event files under <c>tensorboard/</c> in the output folder: per step the loss parts,
/// learning rate, gradient norm and throughput (train/…) and evaluations (eval/…), plus the run's
/// config as a text summary. Each session writes a new file, opened at its first step (a run that
/// fails before it leaves none); after a resume TensorBoard drops the earlier session's steps past
/// the checkpoint (its purge of orphaned data), so each step shows once.
/// </summary>
public sealed class TensorBoardLogger(string outputDir) : IMetricLogger
{
    public const string Folder = "tensorboard";

    private FileStream? _file;
    private TfRecordWriter? _writer;
    private (long Step, string Json)? _config;

    /// <summary>This session's event file (null until the first step).</summary>
    public string? EventFile { get; private set; }

    public void Start(IReadOnlyList<TrainEvent> history, string configJson) => _config = (history.Count > 0 ? history[^1].Step : 0, configJson);

    public void Log(TrainEvent e)
    {
        var values = new List<(string, double)>
        {
            ("train/loss", e.Loss), ("train/kd_loss", e.KdLoss), ("train/ce_loss", e.CeLoss),
            ("train/learning_rate", e.LearningRate), ("train/grad_norm", e.GradNorm), ("train/tokens_per_second", e.TokensPerSecond),
        };
        if (e.Eval is { } eval)
        {
            values.Add(("eval/loss", Math.Log(eval.Perplexity)));
            values.Add(("eval/perplexity", eval.Perplexity));
            if (eval.KlToTeacher is { } kl)
                values.Add(("eval/kl_to_teacher", kl));
            if (eval.Top1Agreement is { } agreement)
                values.Add(("eval/top1_agreement", agreement));
        }

        Writer().Write(TensorBoardEvents.Scalars(Now(), e.Step, values));
    }

    public void Flush(IReadOnlyList<TrainEvent> history) => _file?.Flush(flushToDisk: true);

    public void Dispose() => _writer?.Dispose();

    private TfRecordWriter Writer()
    {
        if (_writer is not null)
            return _writer;
        var folder = Path.Combine(outputDir, Folder);
        Directory.CreateDirectory(folder);
        // TensorBoard finds files by "tfevents" in the name and orders them by the timestamp after it.
        EventFile = Path.Combine(folder, string.Create(CultureInfo.InvariantCulture,
            $"events.out.tfevents.{DateTimeOffset.UtcNow.ToUnixTimeSeconds():D10}.{Environment.MachineName}.{Environment.ProcessId}.{Guid.NewGuid().ToString("N")[..8]}"));
        _file = new FileStream(EventFile, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        _writer = new TfRecordWriter(_file);
        _writer.Write(TensorBoardEvents.FileVersion(Now()));
        if (_config is { } config)
            _writer.Write(TensorBoardEvents.Text(Now(), config.Step, "config", "    " + config.Json.ReplaceLineEndings("\n    ")));
        return _writer;
    }

    private static double Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
}
