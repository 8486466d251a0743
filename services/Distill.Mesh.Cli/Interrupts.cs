using System.Runtime.InteropServices;

namespace Distill.Mesh.Cli;

/// <summary>
/// SIGINT and SIGTERM handled once: the first cancels the command (which stops at its next safe
/// point and cleans up, its live display ended by the command's own disposal), the second is left to
/// the runtime, which ends the process at once (after the terminal's cursor is shown again).
/// </summary>
internal static class Interrupts
{
    public static IDisposable Register(CancellationTokenSource stop)
    {
        var registrations = new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM }.Select(signal => PosixSignalRegistration.Create(signal, context =>
        {
            if (stop.IsCancellationRequested)
            {
                // The process ends now, without the live display's own cleanup.
                Display.LiveProgressDisplay.RestoreTerminal();
                return;
            }

            context.Cancel = true;
            // Through a live display when one runs, so the notice lands above its bars.
            (Display.LiveProgressDisplay.ActiveLog ?? Console.Error).WriteLine($"{(context.Signal == PosixSignal.SIGINT ? "Ctrl-C" : "SIGTERM")}: stopping at the next safe point (again to quit now)");
            stop.Cancel();
        })).ToArray();
        return new Registrations(registrations);
    }

    private sealed class Registrations(PosixSignalRegistration[] registrations) : IDisposable
    {
        public void Dispose()
        {
            foreach (var registration in registrations)
                registration.Dispose();
        }
    }
}
