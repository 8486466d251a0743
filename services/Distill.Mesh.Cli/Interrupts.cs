using System.Runtime.InteropServices;

namespace Distill.Mesh.Cli;

/// <summary>
/// SIGINT and SIGTERM handled once: the first cancels the command (which stops at its next safe
/// point and cleans up), the second is left to the runtime, which ends the process at once.
/// </summary>
internal static class Interrupts
{
    public static IDisposable Register(CancellationTokenSource stop)
    {
        var registrations = new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM }.Select(signal => PosixSignalRegistration.Create(signal, context =>
        {
            if (stop.IsCancellationRequested)
                return;
            context.Cancel = true;
            Console.Error.WriteLine($"{(context.Signal == PosixSignal.SIGINT ? "Ctrl-C" : "SIGTERM")}: stopping at the next safe point (again to quit now)");
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
