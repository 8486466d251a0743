using Distill.Mesh.Cli.Display;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Cli.Tests.Display;

public sealed class TrainViewTests
{
    private static TrainEvent Step(long step, double seconds, double kd = 0.5, double ce = 2.0) =>
        new(step, 1000, kd + ce, kd, ce, 1e-4, 1.0, 1000, 256, StepSeconds: seconds);

    private static string[] Lines(StringWriter output) => output.ToString().Trim().Split('\n').Select(l => l.TrimEnd('\r')).ToArray();

    [Fact]
    public void Eta_FollowsTheStepsDurations_SoASlowFirstStepFades_NotTheTimeSinceStart()
    {
        var output = new StringWriter();
        // Two minutes of loading before the first step: the time since start would divide them by one step.
        var view = new TrainView(new PlainProgressDisplay(output, () => TimeSpan.FromMinutes(2)));

        view.Report(Step(1, 9.0));
        foreach (var step in Enumerable.Range(2, 20))
            view.Report(Step(step, 0.5));

        var lines = Lines(output);
        Assert.StartsWith("step 1/1000 [....................] loss 2.5000 (kd 0.5000, ce 2.0000) lr 1.0e-4 1,000 tok/s, 0.111 steps/s, ETA 2:29:51", lines[0]); // 999 × 9 s
        // 979 steps left at 0.5 s (the 9 s first step has left the window): 8:09.
        Assert.EndsWith(", 2 steps/s, ETA 8:09", lines[^1]);
    }

    [Fact]
    public void Eta_WithoutDurations_UsesTheTimeBetweenReports_AndWaitsForTwo()
    {
        var output = new StringWriter();
        var now = TimeSpan.FromMinutes(5);
        var view = new TrainView(new PlainProgressDisplay(output, () => now), "stage train");

        view.Report(Step(10, 0));
        now += TimeSpan.FromSeconds(10);
        view.Report(Step(20, 0));

        var lines = Lines(output);
        Assert.StartsWith("stage train: step 10/1000", lines[0]);
        Assert.EndsWith("tok/s, ETA --:--", lines[0]);
        Assert.EndsWith("ETA 16:20", lines[1]); // 980 steps at 1 s
    }

    [Fact]
    public void AnSftStep_ShowsItsLoss_WithoutAZeroKdPart_AndEvaluationsAreLinesOfTheirOwn()
    {
        var output = new StringWriter();
        var view = new TrainView(new PlainProgressDisplay(output));

        view.Report(Step(1, 1, kd: 0, ce: 2.5));
        view.Report(Step(2, 1, kd: 0.25, ce: 2.5) with { Eval = new EvalResult(3.25, 0.125, 0.5, 100), Message = "evaluated" });

        var lines = Lines(output);
        Assert.Contains("loss 2.5000 lr", lines[0]);
        Assert.DoesNotContain("kd", lines[0]);
        Assert.Contains("loss 2.7500 (kd 0.2500, ce 2.5000)", lines[1]);
        Assert.Equal($"step 2: eval ppl 3.250 kl 0.1250 top1 {0.5:P1} — evaluated", lines[2]);
    }

    [Fact]
    public void Tokenising_is_a_phase_of_its_own_and_the_last_step_closes_the_bar()
    {
        var output = new StringWriter();
        var now = TimeSpan.Zero;
        var view = new TrainView(new PlainProgressDisplay(output, () => now), "teacher");

        foreach (var done in new[] { 1000, 2000 })
        {
            view.Report(TrainEvent.Note("tokenised …") with { Preparing = new PreparationProgress("tokenising", done, 2000, "rows") });
            now += TimeSpan.FromSeconds(1);
        }

        view.Report(new TrainEvent(2, 2, 1.5, 0, 1.5, 1e-3, 1, 100, 64, StepSeconds: 0.5));

        var lines = Lines(output);
        Assert.Equal("teacher tokenising: 1,000/2,000 rows [##########..........] ETA --:--", lines[0]);
        Assert.Equal("teacher tokenising: 2,000/2,000 rows [####################] 1,000 rows/s, ETA 0:00", lines[1]);
        Assert.Equal("teacher tokenising: 2,000/2,000 rows in 1.0 s (1,000 rows/s on average)", lines[2]);
        Assert.StartsWith("teacher: step 2/2 [####################] loss 1.5000", lines[3]);
        Assert.StartsWith("teacher: step 2/2 in ", lines[4]);
        Assert.Equal(5, lines.Length);
    }

    [Fact]
    public void A_tokenising_phase_whose_last_report_falls_short_is_closed_by_the_first_step()
    {
        var output = new StringWriter();
        var view = new TrainView(new PlainProgressDisplay(output));

        view.Report(TrainEvent.Note("tokenised …") with { Preparing = new PreparationProgress("tokenising", 20_010, 20_015, "rows") });
        view.Report(new TrainEvent(1, 2, 1.5, 0, 1.5, 1e-3, 1, 100, 64, StepSeconds: 0.5));

        var lines = Lines(output);
        Assert.StartsWith("tokenising: 20,010/20,015 rows [###################.]", lines[0]);
        Assert.StartsWith("tokenising: 20,010/20,015 rows in ", lines[1]);
        Assert.StartsWith("step 1/2 ", lines[2]);
        Assert.Equal(3, lines.Length);
    }
}
