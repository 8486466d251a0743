using Distill.Mesh.Specs.Storage;
using Distill.Mesh.Training.Recipes;
using ScottPlot;
using SkiaSharp;

namespace Distill.Mesh.Training.Metrics;

/// <summary>
/// A run's (or several runs') metrics as one figure of four panels, drawn with ScottPlot: loss
/// parts per step with the eval loss as points (log scale, so a long run's tail is not flat), eval
/// perplexity (log scale), learning rate and tokens/s. One run: a colour per loss part; several:
/// a colour per run and a line pattern per part. Written as PNG and SVG.
/// </summary>
public static class MetricsPlot
{
    /// <summary>One run to draw: its label in legends and its events.</summary>
    public sealed record Run(string Label, IReadOnlyList<TrainEvent> History);

    private const int PanelWidth = 640, PanelHeight = 400;

    /// <summary>Writes loss.png and loss.svg beside the run's metrics.jsonl; returns their paths.</summary>
    public static (string Png, string Svg) WriteRun(string outputDir, IReadOnlyList<TrainEvent> history, string title)
    {
        var png = Path.Combine(outputDir, "loss.png");
        var svg = Path.Combine(outputDir, "loss.svg");
        var runs = new[] { new Run(title, history) };
        Write(png, runs, title);
        Write(svg, runs, title);
        return (png, svg);
    }

    /// <summary>Writes the figure of <paramref name="runs"/> to <paramref name="path"/>: PNG or SVG by its extension.</summary>
    /// <exception cref="ArgumentException">The extension is neither .png nor .svg, or there is no run.</exception>
    public static void Write(string path, IReadOnlyList<Run> runs, string title)
    {
        if (runs.Count == 0)
            throw new ArgumentException("no run to plot", nameof(runs));
        var format = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".png" => ImageFormat.Png,
            ".svg" => ImageFormat.Svg,
            _ => throw new ArgumentException($"'{path}': a plot is written as .png or .svg", nameof(path)),
        };
        var panels = Panels(runs, title);
        try
        {
            AtomicFile.Write(path, stream => Render(panels, stream, format));
        }
        finally
        {
            foreach (var panel in panels)
                panel.Dispose();
        }
    }

    private static void Render(IReadOnlyList<Plot> panels, Stream stream, ImageFormat format)
    {
        var width = PanelWidth * 2;
        var height = PanelHeight * ((panels.Count + 1) / 2);
        void Draw(SKCanvas canvas)
        {
            canvas.Clear(SKColors.White);
            for (var i = 0; i < panels.Count; i++)
            {
                var (column, row) = (i % 2, i / 2);
                // A plot clears the canvas before it draws: the clip keeps each to its own cell.
                canvas.Save();
                canvas.ClipRect(SKRect.Create(column * PanelWidth, row * PanelHeight, PanelWidth, PanelHeight));
                panels[i].Render(canvas, new PixelRect(column * PanelWidth, (column + 1) * PanelWidth, (row + 1) * PanelHeight, row * PanelHeight));
                canvas.Restore();
            }
        }

        if (format == ImageFormat.Svg)
        {
            using (var canvas = SKSvgCanvas.Create(SKRect.Create(width, height), stream))
                Draw(canvas);
            return;
        }

        using var surface = SKSurface.Create(new SKImageInfo(width, height)) ?? throw new InvalidOperationException("SkiaSharp could not create a drawing surface");
        Draw(surface.Canvas);
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        data.SaveTo(stream);
    }

    private static List<Plot> Panels(IReadOnlyList<Run> runs, string title)
    {
        var single = runs.Count == 1;
        var colors = new ScottPlot.Palettes.Category10().Colors;
        Color RunColor(int run, int part) => colors[(single ? part : run) % colors.Length];
        string Label(Run run, string part) => single ? part : $"{run.Label}: {part}";

        var loss = Panel($"{title} — loss per step", "loss (log scale)");
        var perplexity = Panel("eval perplexity", "perplexity (log scale)");
        var rate = Panel("learning rate", "learning rate");
        var throughput = Panel("throughput", "trained tokens / s");
        var patterns = new[] { LinePattern.Solid, LinePattern.Dashed, LinePattern.Dotted };
        var logged = new List<double>();
        var perplexities = new List<double>();
        for (var r = 0; r < runs.Count; r++)
        {
            var history = runs[r].History;
            var steps = history.Select(e => (double)e.Step).ToArray();
            var parts = new (string Name, Func<TrainEvent, double> Value)[] { ("loss", e => e.Loss), ("kd", e => e.KdLoss), ("ce", e => e.CeLoss) };
            for (var p = 0; p < parts.Length; p++)
            {
                // A part that is zero throughout (kd in an SFT run) has no place on a log scale; one equal
                // to the total throughout (ce in SFT, kd at kd_ratio 1; the total is summed in float32) would only hide its line.
                var points = history.Where(e => parts[p].Value(e) > 0 && double.IsFinite(parts[p].Value(e))).ToList();
                if (points.Count == 0 || p > 0 && history.All(e => Math.Abs(parts[p].Value(e) - e.Loss) <= 1e-6 * Math.Max(1, Math.Abs(e.Loss))))
                    continue;
                var line = loss.Add.ScatterLine(points.Select(e => (double)e.Step).ToArray(), points.Select(e => Math.Log10(parts[p].Value(e))).ToArray(), RunColor(r, p));
                line.LinePattern = single ? LinePattern.Solid : patterns[p];
                line.LineWidth = 1.5f;
                line.LegendText = Label(runs[r], parts[p].Name);
                logged.AddRange(points.Select(e => parts[p].Value(e)));
            }

            var evaluated = history.Where(e => e.Eval is { Perplexity: > 0 } eval && double.IsFinite(eval.Perplexity)).ToList();
            if (evaluated.Count > 0)
            {
                var evalSteps = evaluated.Select(e => (double)e.Step).ToArray();
                // The eval loss is the mean token cross-entropy, ln(perplexity); only positive values have a log.
                var positive = evaluated.Where(e => e.Eval!.Perplexity > 1).ToList();
                var evalLoss = loss.Add.ScatterPoints(positive.Select(e => (double)e.Step).ToArray(), positive.Select(e => Math.Log10(Math.Log(e.Eval!.Perplexity))).ToArray(), RunColor(r, 3));
                evalLoss.MarkerSize = 8;
                evalLoss.MarkerShape = MarkerShape.FilledDiamond;
                evalLoss.LegendText = Label(runs[r], "eval loss");
                logged.AddRange(positive.Select(e => Math.Log(e.Eval!.Perplexity)));
                var ppl = perplexity.Add.Scatter(evalSteps, evaluated.Select(e => Math.Log10(e.Eval!.Perplexity)).ToArray(), RunColor(r, 3));
                ppl.MarkerSize = 7;
                ppl.LegendText = runs[r].Label;
                perplexities.AddRange(evaluated.Select(e => e.Eval!.Perplexity));
            }

            var lr = rate.Add.ScatterLine(steps, history.Select(e => e.LearningRate).ToArray(), RunColor(r, 0));
            lr.LegendText = runs[r].Label;
            var tps = throughput.Add.ScatterLine(steps, history.Select(e => e.TokensPerSecond).ToArray(), RunColor(r, 0));
            tps.LegendText = runs[r].Label;
        }

        LogAxis(loss, logged);
        LogAxis(perplexity, perplexities);
        if (perplexities.Count == 0)
        {
            perplexity.HideAxesAndGrid();
            perplexity.Add.Annotation("no evaluation in this run (training.eval_every, dataset.eval_fraction)", Alignment.MiddleCenter);
        }
        rate.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = v => v == 0 ? "0" : v.ToString("0.##E+0", System.Globalization.CultureInfo.InvariantCulture) };
        foreach (var panel in new[] { loss, perplexity, rate, throughput })
        {
            if (panel.GetPlottables().Any(p => p is ScottPlot.Plottables.Scatter) && (panel == loss || !single))
                panel.ShowLegend(Alignment.UpperRight);
        }

        return [loss, perplexity, rate, throughput];
    }

    private static Plot Panel(string title, string yLabel)
    {
        var plot = new Plot();
        plot.Title(title, 14);
        plot.XLabel("step", 12);
        plot.YLabel(yLabel, 12);
        return plot;
    }

    /// <summary>
    /// The panel's data are log10 of the values; labelled ticks at 1, 2, 5 × 10^k (every integer
    /// mantissa within about a decade, only 1 × 10^k over four or more), minor ticks at the others.
    /// </summary>
    private static void LogAxis(Plot plot, IReadOnlyCollection<double> values)
    {
        if (values.Count == 0)
            return;
        var (low, high) = (Math.Log10(values.Min()), Math.Log10(values.Max()));
        var pad = Math.Max(0.05, (high - low) * 0.05);
        var (bottom, top) = (low - pad, high + pad);
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (var decade = (int)Math.Floor(bottom); decade <= (int)Math.Ceiling(top); decade++)
        {
            for (var mantissa = 1; mantissa <= 9; mantissa++)
            {
                var at = decade + Math.Log10(mantissa);
                if (at < bottom || at > top)
                    continue;
                if (top - bottom < 1.2 || mantissa is 1 or 2 or 5 && top - bottom < 4 || mantissa == 1)
                    ticks.AddMajor(at, (mantissa * Math.Pow(10, decade)).ToString("G3", System.Globalization.CultureInfo.InvariantCulture));
                else
                    ticks.AddMinor(at);
            }
        }

        plot.Axes.Left.TickGenerator = ticks;
        plot.Axes.SetLimitsY(bottom, top);
    }
}
