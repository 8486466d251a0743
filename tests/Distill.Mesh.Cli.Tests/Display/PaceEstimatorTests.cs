using Distill.Mesh.Cli.Display;

namespace Distill.Mesh.Cli.Tests.Display;

public sealed class PaceEstimatorTests
{
    [Fact]
    public void Rate_and_time_left_follow_the_reports_and_a_slow_start_fades()
    {
        var now = TimeSpan.Zero;
        var pace = new PaceEstimator(() => now);

        pace.Observe(0);
        Assert.Null(pace.PerSecond);
        Assert.Null(pace.Left(100));
        now += TimeSpan.FromSeconds(10); // a slow first item (loading)
        pace.Observe(1);
        Assert.Equal(0.1, pace.PerSecond!.Value, 12);
        for (var done = 2; done <= 20; done++)
        {
            now += TimeSpan.FromSeconds(0.5);
            pace.Observe(done);
        }

        // 2 items/s once the slow one has left the window: 80 left take 40 s.
        Assert.Equal(2.0, pace.PerSecond!.Value, 12);
        Assert.Equal(40.0, pace.Left(100)!.Value.TotalSeconds, 9);
    }

    [Fact]
    public void After_a_slowdown_the_estimate_tracks_the_recent_rate_not_the_average_since_the_start()
    {
        var now = TimeSpan.Zero;
        var pace = new PaceEstimator(() => now);
        pace.Observe(0);
        for (var step = 1; step <= 100; step++)
        {
            now += TimeSpan.FromSeconds(0.1);
            pace.Observe(step);
        }

        Assert.Equal(400 * 0.1, pace.Left(500)!.Value.TotalSeconds, 6);
        // The steps become 4x slower (a longer sequence length, a shared machine).
        for (var step = 101; step <= 130; step++)
        {
            now += TimeSpan.FromSeconds(0.4);
            pace.Observe(step);
        }

        // 370 steps left at 0.4 s: 148 s. The average since the start (22 s / 130 steps) would say 63 s.
        var left = pace.Left(500)!.Value.TotalSeconds;
        Assert.InRange(left, 148 * 0.98, 148 * 1.02);
        Assert.True(Math.Abs(22.0 / 130 * 370 - 148) > 0.5 * 148, "the whole-history estimate is far off, so the test tells the two apart");
    }

    [Fact]
    public void A_measured_duration_estimates_the_first_report_then_the_time_between_reports_takes_over()
    {
        // Two minutes of loading before the first report: they do not count, the step's own 9 s does.
        var now = TimeSpan.FromMinutes(2);
        var pace = new PaceEstimator(() => now);

        pace.Observe(10, TimeSpan.FromSeconds(9));
        Assert.Equal(990 * 9.0, pace.Left(1000)!.Value.TotalSeconds, 9);
        // Then a report every 10 steps, 3 s apart (an evaluation now and then included), while the
        // one step each report measured took 0.2 s: the time between reports is what the rest takes.
        for (var step = 20; step <= 200; step += 10)
        {
            now += TimeSpan.FromSeconds(3);
            pace.Observe(step, TimeSpan.FromSeconds(0.2));
        }

        Assert.Equal(800 * 0.3, pace.Left(1000)!.Value.TotalSeconds, 9);
    }

    [Fact]
    public void A_stall_counts_in_the_next_sample()
    {
        var now = TimeSpan.Zero;
        var pace = new PaceEstimator(() => now);
        pace.Observe(0);
        now += TimeSpan.FromSeconds(1);
        pace.Observe(10);
        now += TimeSpan.FromSeconds(9); // no progress: the same count reported again
        pace.Observe(10);
        now += TimeSpan.FromSeconds(1);
        pace.Observe(20);

        // 20 items in 11 s, not 20 in 2 s.
        Assert.Equal(20 / 11.0, pace.PerSecond!.Value, 12);
    }
}
