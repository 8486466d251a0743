using Spectre.Console;
using Spectre.Console.Rendering;

namespace Distill.Mesh.Cli.Display;

/// <summary>The phase's rate in its own unit (steps/s, rows/s, MB/s...), from <see cref="PaceEstimator"/>'s recent window.</summary>
internal sealed class RateColumn : ProgressColumn
{
    // Kept on one line: on a narrow terminal the description wraps instead.
    protected override bool NoWrap => true;

    public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
        new Text(task.Tag is PhaseState state ? state.Rate() ?? "" : "", Style.Plain).RightJustified();
}
