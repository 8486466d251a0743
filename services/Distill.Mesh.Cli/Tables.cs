using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Distill.Mesh.Cli;

/// <summary>
/// Aligned tables for people (Spectre.Console): box drawing on a terminal, a Markdown table when the
/// output is a file, a pipe or a CI log. Programs use the commands' --json instead.
/// </summary>
internal static class Tables
{
    /// <summary>A console writing to <paramref name="output"/>; the real terminal keeps its width, anything else gets one so wide that rows never wrap.</summary>
    public static IAnsiConsole ConsoleFor(TextWriter output)
    {
        var terminal = IsTerminal(output);
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });
        if (!terminal)
        {
            console.Profile.Width = 100_000;
            console.Profile.Capabilities.Unicode = false;
        }

        return console;
    }

    /// <summary>True when <paramref name="output"/> is the process's own stdout and that is a terminal.</summary>
    public static bool IsTerminal(TextWriter output) => ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;

    /// <summary>Writes a table; columns named in <paramref name="numeric"/> are right-aligned.</summary>
    public static void Write(TextWriter output, string? title, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows, params string[] numeric)
    {
        var table = new Table { Border = IsTerminal(output) ? TableBorder.Rounded : TableBorder.Markdown };
        if (title is not null)
            table.Title = new TableTitle(Markup.Escape(title));
        foreach (var header in headers)
        {
            var column = new TableColumn(new Text(header));
            if (numeric.Contains(header))
                column.RightAligned();
            table.AddColumn(column);
        }

        foreach (var row in rows)
            table.AddRow(row.Select(cell => (IRenderable)new Text(Printable(cell))).ToArray());
        if (IsTerminal(output))
        {
            ConsoleFor(output).Write(table);
            return;
        }

        // Outside a terminal: the Markdown lines only, without the padding rows and trailing blanks.
        var text = new StringWriter();
        ConsoleFor(text).Write(table);
        foreach (var line in text.ToString().Split('\n').Select(l => l.TrimEnd()).Where(l => l.Length > 0))
            output.WriteLine(line);
    }

    /// <summary>Two columns, key and value, for one object's fields.</summary>
    public static void WriteFields(TextWriter output, string? title, IEnumerable<(string Key, string Value)> fields) =>
        Write(output, title, ["field", "value"], fields.Select(f => (IReadOnlyList<string>)[f.Key, f.Value]));

    /// <summary>Control characters (a model's output may hold any) shown as escapes, so a row stays one line.</summary>
    public static string Printable(string text) =>
        text.Any(char.IsControl) ? string.Concat(text.Select(c => c switch { '\n' => "\\n", '\t' => "\\t", '\r' => "\\r", _ when char.IsControl(c) => $"\\u{(int)c:x4}", _ => c.ToString() })) : text;

    /// <summary>A number as tables show it: invariant culture, up to six significant digits; "-" for none.</summary>
    public static string Number(double? value) => value is { } v ? v.ToString("G6", CultureInfo.InvariantCulture) : "-";
}
