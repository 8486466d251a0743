using System.Text.RegularExpressions;
using Distill.Mesh.Cli.Display;
using Spectre.Console.Testing;

namespace Distill.Mesh.Cli.Tests.Display;

public sealed partial class ProgressDisplayTests
{
    [GeneratedRegex(@"\u001b\[[0-9;?]*[A-Za-z]")]
    private static partial Regex Escape();

    /// <summary>A fake phase: 20 tensors, the first after a 10 s load, then one every 0.5 s.</summary>
    private static void Extract(IProgressDisplay display, Action<TimeSpan> advance, int upTo = 20)
    {
        var phase = display.Start("shard 0", 100, ProgressUnit.Of("tensors"));
        phase.Set(0);
        advance(TimeSpan.FromSeconds(10));
        phase.Set(1, "q_proj: r 8");
        for (var done = 2; done <= upTo; done++)
        {
            advance(TimeSpan.FromSeconds(0.5));
            phase.Set(done, $"layer {done}: r 8");
        }
    }

    [Fact]
    public void On_a_terminal_the_live_display_draws_a_bar_with_its_rate_and_eta()
    {
        var console = new TestConsole().Interactive().EmitAnsiSequences().Width(160);
        var now = TimeSpan.Zero;
        using (var display = new LiveProgressDisplay(console, () => now))
            Extract(display, step => now += step);

        var screen = Escape().Replace(console.Output, "");
        var last = screen.Split('\n').Last(l => l.Contains("shard 0", StringComparison.Ordinal));
        Assert.Contains("shard 0: 20/100 tensors  layer 20: r 8", last);
        Assert.Matches("[━-]{10,}", last); // the bar (Unicode or ASCII)
        Assert.Contains("20%", last);
        Assert.Contains("2 tensors/s", last); // the recent rate, not 20 in 19.5 s
        Assert.Contains("ETA 0:40", last); // 80 left at 2/s
        Assert.Contains("\u001b[", console.Output); // drawn with escape codes, in place
    }

    [Fact]
    public void On_a_narrow_terminal_the_description_is_cut_and_rate_and_eta_stay_on_the_row()
    {
        var console = new TestConsole().Interactive().EmitAnsiSequences().Width(80);
        var now = TimeSpan.Zero;
        using (var display = new LiveProgressDisplay(console, () => now))
            Extract(display, step => now += step);

        var lines = Escape().Replace(console.Output, "").Split('\n').Select(l => l.TrimEnd('\r', ' ')).ToList();
        var last = lines.Last(l => l.Contains("shard 0", StringComparison.Ordinal));
        Assert.Matches(@"^shard 0: 20/100 tensors.*…", last);
        Assert.EndsWith("2 tensors/s ETA 0:40", last);
        Assert.True(last.Length <= 80, last);
    }

    [Fact]
    public void A_warning_during_the_live_display_is_printed_whole_above_the_bars()
    {
        var console = new TestConsole().Interactive().EmitAnsiSequences().Width(160);
        var now = TimeSpan.Zero;
        using (var display = new LiveProgressDisplay(console, () => now))
        {
            Extract(display, step => now += step, upTo: 5);
            display.Log.WriteLine("warning: tensor lm_head skipped (tied to the embeddings)");
            var phase = display.Start("push", 1000, ProgressUnit.Bytes);
            phase.Set(500);
            phase.Complete();
        }

        var lines = Escape().Replace(console.Output, "").Split('\n').Select(l => l.TrimEnd('\r', ' ')).ToList();
        Assert.Contains("warning: tensor lm_head skipped (tied to the embeddings)", lines);
        var last = string.Join("\n", lines);
        Assert.Contains("push: 500 B of 1.0 kB in 0.0 s", last); // the completed phase's summary stays on screen
    }

    [Fact]
    public void Outside_a_terminal_the_display_prints_plain_lines_without_escape_codes()
    {
        var output = new StringWriter();
        var now = TimeSpan.Zero;
        var display = ProgressDisplays.For(output); // not the process's stderr: a log
        Assert.IsType<PlainProgressDisplay>(display);
        display = new PlainProgressDisplay(output, () => now);
        Extract(display, step => now += step);

        var text = output.ToString();
        Assert.DoesNotContain('\u001b', text);
        Assert.DoesNotContain('\r', text.Replace(Environment.NewLine, "\n"));
        var lines = text.Trim().Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Equal(21, lines.Count);
        Assert.Equal("shard 0: 0/100 tensors [....................] ETA --:--", lines[0]);
        Assert.Equal("shard 0: 20/100 tensors [####................] layer 20: r 8, 2 tensors/s, ETA 0:40", lines[^1]);
    }

    [Fact]
    public void A_transfer_outside_a_terminal_prints_a_line_per_quarter_and_a_closing_line()
    {
        var output = new StringWriter();
        var now = TimeSpan.Zero;
        var phase = new PlainProgressDisplay(output, () => now).Start("push", 1000, ProgressUnit.Bytes, PlainLines.Quarters);

        for (var sent = 100; sent <= 1000; sent += 100)
        {
            now += TimeSpan.FromSeconds(0.1);
            phase.Set(sent);
        }

        phase.Complete();

        var lines = output.ToString().Trim().Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Equal(5, lines.Count);
        Assert.Equal("push: 300 B of 1.0 kB [######..............] 1.0 kB/s, ETA 0:00", lines[0]);
        Assert.StartsWith("push: 1.0 kB of 1.0 kB [####################]", lines[3]);
        Assert.Equal("push: 1.0 kB of 1.0 kB in 1.0 s (1.0 kB/s on average)", lines[4]);
    }

    [Theory]
    [InlineData(999, "999 B")]
    [InlineData(12_345, "12.3 kB")]
    [InlineData(45_600_000, "45.6 MB")]
    [InlineData(3_210_000_000, "3.21 GB")]
    public void Bytes_are_shown_in_decimal_units(double bytes, string shown) => Assert.Equal(shown, ProgressUnit.ByteSize(bytes));
}
