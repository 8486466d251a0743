namespace Distill.Mesh.Cli.Tests;

public sealed class RateMeterTests
{
    [Fact]
    public void Rate_and_time_left_follow_the_reports_and_a_slow_start_fades()
    {
        var now = TimeSpan.Zero;
        var meter = new RateMeter(() => now);

        Assert.Equal("", meter.Report(0, 100, "tensors"));
        now += TimeSpan.FromSeconds(10); // a slow first item (loading)
        meter.Report(1, 100, "tensors");
        string last = "";
        for (var done = 2; done <= 20; done++)
        {
            now += TimeSpan.FromSeconds(0.5);
            last = meter.Report(done, 100, "tensors");
        }

        // ~2 tensors/s with 80 left: about 40 s.
        Assert.Matches(@"^2(\.0[0-9]*)? tensors/s, ETA 0:4[0-1]$", last);
    }

    [Theory]
    [InlineData(999, "999 B")]
    [InlineData(12_345, "12.3 kB")]
    [InlineData(45_600_000, "45.6 MB")]
    [InlineData(3_210_000_000, "3.21 GB")]
    public void Bytes_are_shown_in_decimal_units(double bytes, string shown) => Assert.Equal(shown, RateMeter.Bytes(bytes));

    [Fact]
    public void A_transfer_outside_a_terminal_prints_a_line_per_quarter_and_a_closing_line()
    {
        var output = new StringWriter();
        var line = new TransferLine(output, "push", 1000, plain: true);

        for (var sent = 100; sent <= 1000; sent += 100)
            line.Report(sent);
        line.Finish();

        var lines = output.ToString().Trim().Split('\n').Select(l => l.Trim()).ToList();
        Assert.Equal(5, lines.Count);
        Assert.StartsWith("push: 300 B of 1.0 kB", lines[0]);
        Assert.StartsWith("push: 1.0 kB of 1.0 kB", lines[3]);
        Assert.Matches(@"^push: 1\.0 kB in [0-9.]+ s \(.+/s\)$", lines[4]);
    }
}
