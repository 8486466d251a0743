using Distill.Mesh.Specs.Storage;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Distill.Mesh.Modeling.Checkpoints;

namespace Distill.Mesh.Training.Recipes;

/// <summary>Writes step metrics as JSON lines and the loss curve as an SVG chart.</summary>
public static class MetricsLog
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static void Append(string outputDir, TrainEvent e) =>
        File.AppendAllText(Path.Combine(outputDir, "metrics.jsonl"), JsonSerializer.Serialize(e, Json) + "\n");

    /// <summary>Rewrites metrics.jsonl from a history (after a resume, so no step appears twice).</summary>
    public static void Rewrite(string outputDir, IEnumerable<TrainEvent> history) =>
        AtomicFile.WriteAllText(Path.Combine(outputDir, "metrics.jsonl"), string.Concat(history.Select(e => JsonSerializer.Serialize(e, Json) + "\n")));

    /// <summary>An SVG line chart of total, KD and CE loss per step (eval perplexity is not plotted).</summary>
    public static void WritePlot(string path, IReadOnlyList<TrainEvent> history, string title)
    {
        const int width = 720, height = 360, left = 60, right = 20, top = 36, bottom = 44;
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{width / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{System.Security.SecurityElement.Escape(title)}</text>");
        if (history.Count > 0)
        {
            var series = new (string Name, string Color, Func<TrainEvent, double> Value)[]
            {
                ("loss", "#1f77b4", e => e.Loss), ("kd", "#d62728", e => e.KdLoss), ("ce", "#2ca02c", e => e.CeLoss),
            };
            var maxStep = Math.Max(1, history.Max(e => e.Step));
            var maxY = history.Max(e => series.Max(s => s.Value(e)));
            var minY = Math.Min(0, history.Min(e => series.Min(s => s.Value(e))));
            double X(long step) => left + (width - left - right) * (double)step / maxStep;
            double Y(double v) => top + (height - top - bottom) * (1 - (v - minY) / Math.Max(1e-12, maxY - minY));
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{height - bottom}\" x2=\"{width - right}\" y2=\"{height - bottom}\" stroke=\"black\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{height - bottom}\" stroke=\"black\"/>");
            for (var i = 0; i <= 4; i++)
            {
                var v = minY + (maxY - minY) * i / 4;
                svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 6}\" y=\"{Y(v) + 4:F1}\" text-anchor=\"end\">{v:G3}</text>");
            }

            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{width / 2}\" y=\"{height - 10}\" text-anchor=\"middle\">step (last {maxStep})</text>");
            for (var s = 0; s < series.Length; s++)
            {
                var points = string.Join(" ", history.Select(e => string.Create(CultureInfo.InvariantCulture, $"{X(e.Step):F1},{Y(series[s].Value(e)):F1}")));
                svg.Append(CultureInfo.InvariantCulture, $"<polyline fill=\"none\" stroke=\"{series[s].Color}\" stroke-width=\"1.5\" points=\"{points}\"/>");
                svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{width - right - 60}\" y=\"{top + 14 * (s + 1)}\" fill=\"{series[s].Color}\">{series[s].Name}</text>");
            }
        }

        svg.Append("</svg>");
        AtomicFile.WriteAllText(path, svg.ToString());
    }
}
