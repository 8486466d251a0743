using Distill.Mesh.Testing;

namespace Distill.Mesh.Cli.Tests;

public sealed class TrainBenchCommandTests
{
    [Fact]
    public async Task BenchTrain_TinyModel_PrintsFullAndLoraRowsWhosePhasesAddUpToTheStep()
    {
        var (code, output, error) = await CliRunner.Run("bench", "train", "--config", TinyModels.ConfigPath("tiny-llama.json"),
            "--batch", "2", "--seq", "16", "--steps", "1", "--lora", "4", "--dtypes", "float32");

        Assert.True(code == 0, error);
        var rows = output.Split('\n').Where(l => l.StartsWith("| float32", StringComparison.Ordinal))
            .Select(l => l.Split('|', StringSplitOptions.TrimEntries).Skip(1).SkipLast(1).ToArray()).ToList();
        Assert.Equal(["full", "LoRA r4"], rows.Select(r => r[1]));
        foreach (var row in rows)
        {
            // One timed step: the six phases are that step's parts (each printed to 0.01 s).
            var step = double.Parse(row[3], System.Globalization.CultureInfo.InvariantCulture);
            var phases = row[4..10].Sum(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture));
            Assert.InRange(phases, step - 0.03, step + 0.03);
            Assert.True(double.Parse(row[10], System.Globalization.CultureInfo.InvariantCulture) > 0, $"tokens/s {row[10]}");
        }

        // LoRA's backward skips the frozen weights' gradients: fewer FLOPs per token than full fine-tuning.
        Assert.True(double.Parse(rows[1][11], System.Globalization.CultureInfo.InvariantCulture) < double.Parse(rows[0][11], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task BenchTrain_SequenceBeyondTheModel_IsAnErrorNamingTheOption()
    {
        var (code, _, error) = await CliRunner.Run("bench", "train", "--config", TinyModels.ConfigPath("tiny-llama.json"), "--seq", "100000");

        Assert.NotEqual(0, code);
        Assert.Contains("--seq", error);
    }
}
