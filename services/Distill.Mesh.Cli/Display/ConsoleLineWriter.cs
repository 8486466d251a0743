using System.Text;
using Spectre.Console;

namespace Distill.Mesh.Cli.Display;

/// <summary>
/// A writer that hands whole lines to a Spectre console, so that while a live display runs they are
/// printed above it (the display redraws below) instead of through it.
/// </summary>
internal sealed class ConsoleLineWriter(IAnsiConsole console) : TextWriter
{
    private readonly StringBuilder _line = new();

    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value)
    {
        lock (_line)
        {
            if (value == '\n')
            {
                console.Write(new Text(_line.ToString().TrimEnd('\r') + "\n"));
                _line.Clear();
            }
            else
            {
                _line.Append(value);
            }
        }
    }

    public override void Write(string? value)
    {
        foreach (var c in value ?? "")
            Write(c);
    }

    public override void WriteLine(string? value) => Write(value + "\n");

    public override void Flush()
    {
        lock (_line)
        {
            if (_line.Length == 0)
                return;
            console.Write(new Text(_line + "\n"));
            _line.Clear();
        }
    }
}
