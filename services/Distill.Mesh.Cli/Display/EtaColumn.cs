using Spectre.Console;
using Spectre.Console.Rendering;

namespace Distill.Mesh.Cli.Display;

/// <summary>
/// Time left from <see cref="PaceEstimator"/> (Spectre's own RemainingTimeColumn averages the whole
/// task, so a slow start or a slowdown misleads it); the time taken once the phase ended.
/// </summary>
internal sealed class EtaColumn : ProgressColumn
{
    // Kept on one line: on a narrow terminal the description wraps instead.
    protected override bool NoWrap => true;

    public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime)
    {
        if (task.Tag is not PhaseState state)
            return Text.Empty;
        return new Text(state.Ended ? ProgressUnit.Clock(state.Elapsed()) : state.Eta(), new Style(Color.Blue)).RightJustified();
    }
}
