using Distill.Mesh.Testing;

namespace Distill.Mesh.Cli.Tests;

public sealed class PlotCommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

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
