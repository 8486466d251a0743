using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Cli.Tests;

public sealed class ProgressLineTests
{
    private static TrainEvent Step(long step, double seconds, double kd = 0.5, double ce = 2.0) =>
        new(step, 1000, kd + ce, kd, ce, 1e-4, 1.0, 1000, 256, StepSeconds: seconds);

    [Fact]
    public void Eta_FollowsTheStepsDurations_SoASlowFirstStepFades_NotTheTimeSinceStart()
    {
        var output = new StringWriter();
        // Two minutes of loading before the first step: the old ETA divided them by one step.
        var line = new ProgressLine(output, plain: true, clock: () => TimeSpan.FromMinutes(2));

        line.Report(Step(1, 9.0));
        foreach (var step in Enumerable.Range(2, 20))
            line.Report(Step(step, 0.5));

        var last = output.ToString().Trim().Split('\n')[^1];
        // 979 steps left at ~0.5 s: about 8 minutes (the 9 s first step has faded from the average).
        Assert.Matches(@"ETA 8:[0-9]{2}$", last.Trim());
        Assert.StartsWith("step 1/1000", output.ToString());
        Assert.Contains("ETA 2:29:51", output.ToString().Split('\n')[0]); // 999 × 9 s after the first step alone
    }

    [Fact]
    public void Eta_WithoutDurations_UsesTheTimeBetweenReports_AndWaitsForTwo()
    {
        var output = new StringWriter();
        var now = TimeSpan.FromMinutes(5);
        var line = new ProgressLine(output, plain: true, clock: () => now);

        line.Report(Step(10, 0));
        now += TimeSpan.FromSeconds(10);
        line.Report(Step(20, 0));

        var lines = output.ToString().Trim().Split('\n');
        Assert.EndsWith("ETA --:--", lines[0].Trim());
        Assert.EndsWith("ETA 16:20", lines[1].Trim()); // 980 steps at 1 s
    }

    [Fact]
    public void AnSftStep_ShowsItsLoss_WithoutAZeroKdPart()
    {
        var output = new StringWriter();
        var line = new ProgressLine(output, plain: true);

        line.Report(Step(1, 1, kd: 0, ce: 2.5));
        line.Report(Step(2, 1, kd: 0.25, ce: 2.5));

        var lines = output.ToString().Trim().Split('\n');
        Assert.Contains("loss 2.5000 lr", lines[0]);
        Assert.DoesNotContain("kd", lines[0]);
        Assert.Contains("loss 2.7500 (kd 0.2500, ce 2.5000)", lines[1]);
    }

    [Fact]
    public void A_log_line_after_a_bar_redrawn_in_place_starts_on_its_own_line()
    {
        var output = new StringWriter();
        ProgressLine? current = null;
        var log = new LineBreakingWriter(output, () => current?.Finish());

        log.WriteLine("teacher: training…");
        current = new ProgressLine(output, plain: false, label: "teacher");
        current.Report(Step(1, 0.5));
        current.Report(Step(2, 0.5));
        log.WriteLine("teacher: trained");
        current.Finish();

        var lines = output.ToString().Split('\n');
        Assert.Equal("teacher: training…", lines[0]);
        Assert.StartsWith("\rteacher: step 1/1000", lines[1]);
        Assert.Contains("\rteacher: step 2/1000", lines[1]);
        Assert.Equal("teacher: trained", lines[2]);
        Assert.Equal("", lines[3]);
        Assert.Equal(4, lines.Length);
    }
}
