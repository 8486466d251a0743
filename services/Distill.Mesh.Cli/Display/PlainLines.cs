namespace Distill.Mesh.Cli.Display;

/// <summary>How often a plain (non-terminal) display writes a phase's line.</summary>
internal enum PlainLines
{
    /// <summary>A line per update (training log steps, extracted tensors: each is worth reading).</summary>
    EachUpdate,

    /// <summary>A line at each quarter of the total, or every 5 s when the total is unknown (transfers report every chunk).</summary>
    Quarters,
}
