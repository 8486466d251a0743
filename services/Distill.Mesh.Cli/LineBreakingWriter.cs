using System.Text;

namespace Distill.Mesh.Cli;

/// <summary>
/// Writes lines to <paramref name="inner"/>, first calling <paramref name="beforeLine"/> (which ends
/// a progress line redrawn in place), so log lines never land on the end of a bar.
/// </summary>
internal sealed class LineBreakingWriter(TextWriter inner, Action beforeLine) : TextWriter
{
    public override Encoding Encoding => inner.Encoding;

    public override void Write(char value)
    {
        beforeLine();
        inner.Write(value);
    }

    public override void Write(string? value)
    {
        beforeLine();
        inner.Write(value);
    }

    public override void WriteLine(string? value)
    {
        beforeLine();
        inner.WriteLine(value);
    }

    public override void Flush() => inner.Flush();
}
