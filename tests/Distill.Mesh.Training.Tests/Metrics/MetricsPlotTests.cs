using Distill.Mesh.Testing;
using Distill.Mesh.Training.Metrics;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Training.Tests.Metrics;

public sealed class MetricsPlotTests : IDisposable
{
    private readonly TempFolder _dir = new();

    /// <summary>A run's events: loss falling as <paramref name="loss"/>, evaluated every <paramref name="evalEvery"/> steps.</summary>
    private static List<TrainEvent> History(int steps, Func<int, double> loss, double kdShare, int evalEvery = 0) =>
        Enumerable.Range(1, steps).Select(s => new TrainEvent(s, steps, loss(s), kdShare * loss(s), (1 - kdShare) * loss(s),
            3e-3 * (1 - (double)s / steps), 0.5, 1000 + s, 64,
            evalEvery > 0 && s % evalEvery == 0 ? new EvalResult(Math.Exp(loss(s) + 0.2), 0.1, 0.5, 100) : null)).ToList();

    [Fact]
    public void Compare_TwoRunsFromTheirMetricsFiles_WritesPngAndSvgNamingBoth()
    {
        MetricsFile.Write(_dir.Combine("kd"), History(40, s => 3 * Math.Exp(-s / 10.0) + 0.2, kdShare: 0.9, evalEvery: 10));
        MetricsFile.Write(_dir.Combine("sft"), History(40, s => 3 * Math.Exp(-s / 20.0) + 0.3, kdShare: 0));
        var runs = new[] { "kd", "sft" }.Select(n => new MetricsPlot.Run(n, MetricsFile.Read(_dir.Combine(n)))).ToList();

        MetricsPlot.Write(_dir.Combine("compare.png"), runs, "kd vs sft");
        MetricsPlot.Write(_dir.Combine("compare.svg"), runs, "kd vs sft");

        PlotAssert.Png(_dir.Combine("compare.png"));
        var text = PlotAssert.Svg(_dir.Combine("compare.svg"), "kd: loss", "kd: kd", "kd: ce", "kd: eval loss", "sft: loss", "learning rate", "throughput");
        Assert.DoesNotContain("sft: kd", text); // zero throughout: no place on a log scale
        Assert.DoesNotContain("sft: ce", text); // the total throughout: drawn once, as the loss
        Assert.DoesNotContain("no evaluation", text);
    }

    [Fact]
    public void LongRun_LossIsOnALogScale_SoTheTailIsNotFlat()
    {
        // Loss 5 → 0.005 over 1,000 steps: on a linear axis the second half would span 3 % of the curve's height, on a log axis half.
        var history = History(1000, s => 5 * Math.Exp(-Math.Log(1000) * s / 1000), kdShare: 1);
        MetricsPlot.Write(_dir.Combine("long.svg"), [new MetricsPlot.Run("long", history)], "long");

        var points = LossLine(_dir.Combine("long.svg"));
        var (minX, maxX) = (points.Min(p => p.X), points.Max(p => p.X));
        var tail = points.Where(p => p.X >= (minX + maxX) / 2).ToList();
        var spread = points.Max(p => p.Y) - points.Min(p => p.Y);
        var tailSpread = tail.Max(p => p.Y) - tail.Min(p => p.Y);
        Assert.InRange(tailSpread / spread, 0.4, 0.6);
        var text = PlotAssert.Svg(_dir.Combine("long.svg"));
        Assert.Contains("0.01", text);
        Assert.Contains("1", text.Split('\n'));
    }

    [Fact]
    public void Read_MissingOrMalformedFile_NamesTheFileAndLine()
    {
        var missing = Assert.Throws<MetricsFormatException>(() => MetricsFile.Read(_dir.Combine("nowhere")));
        Assert.Contains(_dir.Combine("nowhere"), missing.Message);
        MetricsFile.Write(_dir.Combine("bad"), History(3, s => 1.0 / s, 0.5));
        File.AppendAllText(_dir.Combine("bad", MetricsFile.Name), "{\"step\": \"four\"}\n");

        var malformed = Assert.Throws<MetricsFormatException>(() => MetricsFile.Read(_dir.Combine("bad")));

        Assert.Contains($"{_dir.Combine("bad", MetricsFile.Name)}: line 4 is not a metrics event", malformed.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Write_AnEmptyOrOneStepHistory_StillDrawsTheFigure(int steps)
    {
        // A run stopped before (or right after) its first step still gets its plots.
        MetricsPlot.Write(_dir.Combine("short.png"), [new MetricsPlot.Run("short", History(steps, s => 2, 0.5))], "short");
        MetricsPlot.Write(_dir.Combine("short.svg"), [new MetricsPlot.Run("short", History(steps, s => 2, 0.5))], "short");

        PlotAssert.Png(_dir.Combine("short.png"));
        PlotAssert.Svg(_dir.Combine("short.svg"), "short — loss per step", "no evaluation in this run");
    }

    [Fact]
    public void Write_AnotherExtension_IsRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => MetricsPlot.Write(_dir.Combine("plot.jpg"), [new MetricsPlot.Run("a", History(3, s => 1, 0.5))], "a"));
        Assert.Contains(".png or .svg", error.Message);
        Assert.False(File.Exists(_dir.Combine("plot.jpg")));
    }

    /// <summary>The points of the total loss's line: the first long path in the first series' colour (the loss panel comes first).</summary>
    private static List<(double X, double Y)> LossLine(string svg)
    {
        var d = System.Xml.Linq.XDocument.Load(svg).Descendants().Where(e => e.Name.LocalName == "path" && (string?)e.Attribute("stroke") == "#1F77B4")
            .Select(e => (string?)e.Attribute("d") ?? "").First(a => a.Length > 1000);
        var numbers = System.Text.RegularExpressions.Regex.Matches(d, @"-?[0-9]+(\.[0-9]+)?(e-?[0-9]+)?")
            .Select(m => double.Parse(m.Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        return Enumerable.Range(0, numbers.Count / 2).Select(i => (numbers[2 * i], numbers[2 * i + 1])).ToList();
    }

    public void Dispose() => _dir.Dispose();
}
