using Distill.Mesh.Testing;
using SkiaSharp;

namespace Distill.Mesh.Cli.Tests;

public sealed class PlotCommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

    private string WriteConfig()
    {
        using (var teacher = TinyModels.Create("llama", 1))
            TinyModels.SaveWithByteTokenizer(teacher, _dir.Combine("teacher"));
        using (var student = TinyModels.Create("qwen2", 2))
            TinyModels.SaveWithByteTokenizer(student, _dir.Combine("student"));
        File.WriteAllLines(_dir.Combine("data.jsonl"), Enumerable.Range(0, 12).Select(i => $"{{\"text\": \"sample number {i} is here\"}}"));
        File.WriteAllText(_dir.Combine("kd.yaml"), """
            recipe: kd
            output_dir: run
            student: { model: student }
            teachers: [ { model: teacher } ]
            dataset: { path: data.jsonl, max_length: 32, eval_fraction: 0.2 }
            training: { max_steps: 4, batch_size: 2, eval_every: 2, optimizer: { lr: 1.0e-3 } }
            logging: { backends: [jsonl, tensorboard] }
            """);
        return _dir.Combine("kd.yaml");
    }

    [Fact]
    public async Task Plot_TwoTrainedRuns_WritesAComparisonPngAndSvg()
    {
        var config = WriteConfig();
        foreach (var kind in new[] { "rkl", "fkl" })
        {
            var (trained, output, error) = await CliRunner.Run("train", "--config", config, $"loss.kind={kind}", $"output_dir={_dir.Combine(kind)}");
            Assert.True(trained == 0, error);
            Assert.Contains(_dir.Combine(kind, "loss.png"), output);
            Assert.True(new FileInfo(_dir.Combine(kind, "loss.svg")).Length > 0);
            Assert.Contains(".tfevents.", Assert.Single(Directory.GetFiles(_dir.Combine(kind, "tensorboard"))));
        }

        var (png, pngOutput, pngError) = await CliRunner.Run("plot", _dir.Combine("rkl"), "--compare", _dir.Combine("fkl"), "--out", _dir.Combine("rkl-vs-fkl.png"));
        var (svg, _, svgError) = await CliRunner.Run("plot", _dir.Combine("rkl"), "--compare", _dir.Combine("fkl", "metrics.jsonl"), "--out", _dir.Combine("rkl-vs-fkl.svg"));

        Assert.True(png == 0, pngError);
        Assert.True(svg == 0, svgError);
        Assert.Contains($"wrote {_dir.Combine("rkl-vs-fkl.png")}", pngOutput);
        using var image = SKBitmap.Decode(_dir.Combine("rkl-vs-fkl.png"));
        Assert.Equal((1280, 800), (image.Width, image.Height));
        var text = string.Join("\n", System.Xml.Linq.XDocument.Load(_dir.Combine("rkl-vs-fkl.svg")).Descendants()
            .Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim()));
        Assert.Contains("rkl: loss", text);
        Assert.Contains("fkl: eval loss", text);
        Assert.Contains("rkl vs fkl", text);
    }

    [Fact]
    public async Task Plot_MissingOrMalformedMetrics_ExitsNamingTheFile()
    {
        Directory.CreateDirectory(_dir.Combine("empty"));
        Directory.CreateDirectory(_dir.Combine("bad"));
        File.WriteAllText(_dir.Combine("bad", "metrics.jsonl"), "{\"step\": 1, \"loss\": 1}\nnot json\n");

        var (missing, _, missingError) = await CliRunner.Run("plot", _dir.Combine("empty"));
        var (malformed, _, malformedError) = await CliRunner.Run("plot", _dir.Combine("empty"), "--compare", _dir.Combine("bad"));

        Assert.Equal(1, missing);
        Assert.Contains($"error: {_dir.Combine("empty", "metrics.jsonl")}: no such file", missingError);
        Assert.Equal(1, malformed);
        Assert.Contains($"{_dir.Combine("empty", "metrics.jsonl")}: no such file", malformedError);
        File.WriteAllText(_dir.Combine("empty", "metrics.jsonl"), "{\"step\": 1, \"loss\": 1}\n");
        (malformed, _, malformedError) = await CliRunner.Run("plot", _dir.Combine("empty"), "--compare", _dir.Combine("bad"));
        Assert.Equal(1, malformed);
        Assert.Contains($"{_dir.Combine("bad", "metrics.jsonl")}: line 2 is not a metrics event", malformedError);
        Assert.False(File.Exists("compare.png"));
    }

    public void Dispose() => _dir.Dispose();
}
