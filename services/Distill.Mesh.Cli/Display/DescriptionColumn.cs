using Spectre.Console;
using Spectre.Console.Rendering;

namespace Distill.Mesh.Cli.Display;

/// <summary>
/// The phase's label, count and detail on one line, cut with an ellipsis where the terminal is too
/// narrow (Spectre's TaskDescriptionColumn wraps, squeezing the rate and the ETA into columns of letters).
/// </summary>
/// <param name="barWidth">The width of the bar beside it.</param>
internal sealed class DescriptionColumn(int barWidth) : ProgressColumn
{
    // The usual widths of the percentage ("100%"), rate ("1,234 tensors/s") and ETA ("ETA 12:34"), and the gaps between the five columns.
    private const int PercentageRateEtaAndGaps = 4 + 15 + 9 + 4;

    /// <summary>A bar a quarter of the terminal wide, between 10 and 40 columns.</summary>
    public static int BarWidthFor(int consoleWidth) => Math.Clamp(consoleWidth / 4, 10, 40);

    protected override bool NoWrap => true;

    public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime)
    {
        var room = Math.Max(12, options.ConsoleSize.Width - barWidth - PercentageRateEtaAndGaps);
        var plain = Markup.Remove(task.Description);
        return plain.Length <= room ? new Markup(task.Description) : new Text(plain[..(room - 1)] + "…");
    }
}
