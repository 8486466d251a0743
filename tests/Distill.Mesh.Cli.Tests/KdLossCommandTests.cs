using Distill.Mesh.Testing;
using static System.Math;

namespace Distill.Mesh.Cli.Tests;

public sealed class KdLossCommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

    [Fact]
    public async Task KdLoss_ForwardKlWithLabels_MatchesHandValues()
    {
        // Position 0: teacher p = [0.5, 0.3, 0.2], student q = [0.2, 0.5, 0.3] (as log-probability logits);
        // position 1 is ignored by its label.
        File.WriteAllText(_dir.Combine("s.json"), $"[[[{Log(0.2)}, {Log(0.5)}, {Log(0.3)}], [1, 2, 3]]]");
        File.WriteAllText(_dir.Combine("t.json"), $"[[[{Log(0.5)}, {Log(0.3)}, {Log(0.2)}], [3, 2, 1]]]");
        File.WriteAllText(_dir.Combine("l.json"), "[[1, -100]]");

        var result = await CliRunner.Json("kd-loss", "--student", _dir.Combine("s.json"), "--teacher", _dir.Combine("t.json"),
            "--labels", _dir.Combine("l.json"), "--loss", "fkl", "--kd-ratio", "0.5", "--json");

        var kl = 0.5 * Log(0.5 / 0.2) + 0.3 * Log(0.3 / 0.5) + 0.2 * Log(0.2 / 0.3);
        Assert.Equal(kl, result["kd"]!.GetValue<double>(), 12);
        Assert.Equal(-Log(0.5), result["ce"]!.GetValue<double>(), 12);
        Assert.Equal(0.5 * kl + 0.5 * -Log(0.5), result["total"]!.GetValue<double>(), 12);
        Assert.Equal(1, result["valid_positions"]!.GetValue<long>());
        Assert.Null(result["per_position"]![0]![1]);
    }

    [Fact]
    public async Task KdLoss_MismatchedShapes_IsAnError()
    {
        File.WriteAllText(_dir.Combine("s.json"), "[[[0, 1, 2]]]");
        File.WriteAllText(_dir.Combine("t.json"), "[[[0, 1]]]");

        var (code, _, error) = await CliRunner.Run("kd-loss", "--student", _dir.Combine("s.json"), "--teacher", _dir.Combine("t.json"), "--loss", "jsd");

        Assert.Equal(1, code);
        Assert.Contains("differ in shape", error);
    }

    public void Dispose() => _dir.Dispose();
}
