using Spectre.Console;

namespace Distill.Mesh.Cli.Display;

/// <summary>Picks the display for a writer: live bars on an interactive terminal, plain lines anywhere else.</summary>
internal static class ProgressDisplays
{
    /// <summary>
    /// Live when <paramref name="writer"/> is the process's stderr, that is a terminal (not
    /// redirected, TERM not "dumb") and Spectre finds it interactive and ANSI-capable (CI
    /// environments are not); plain otherwise.
    /// </summary>
    public static IProgressDisplay For(TextWriter writer)
    {
        if (!ReferenceEquals(writer, Console.Error) || Console.IsErrorRedirected || Environment.GetEnvironmentVariable("TERM") is "dumb")
            return new PlainProgressDisplay(writer);
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Detect,
            ColorSystem = ColorSystemSupport.Detect,
            Interactive = InteractionSupport.Detect,
            Out = new AnsiConsoleOutput(Console.Error),
        });
        return console.Profile.Capabilities is { Interactive: true, Ansi: true } ? new LiveProgressDisplay(console) : new PlainProgressDisplay(writer);
    }
}
