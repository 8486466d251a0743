using System.CommandLine;
using Distill.Mesh.Cli;

// Commands report the errors they expect themselves; anything a user's input or environment still
// causes (a malformed address, an unreadable folder) is one line here, never a stack trace. Other
// exceptions are bugs and keep their trace.
var parsed = DistillCommand.Create().Parse(args);
try
{
    return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (CommandRunner.IsUserError(e))
{
    Console.Error.WriteLine($"error: {CommandRunner.Describe(e)}");
    return 1;
}
catch (OperationCanceledException)
{
    return 130;
}
