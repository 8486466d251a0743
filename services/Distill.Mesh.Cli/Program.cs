using System.CommandLine;
using Distill.Mesh.Cli;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

// Commands report the errors they expect themselves; anything a user's input or environment still
// causes (a malformed address, an unreadable folder) is one line here, never a stack trace. Other
// exceptions are bugs and keep their trace.
var parsed = DistillCommand.Create().Parse(args);
// The CLI's own spans (a run's root) go to the collector the services use, when one is set;
// `distill up` is left out: its services export their spans themselves.
using var tracing = Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT") is { Length: > 0 } && args.FirstOrDefault() != "up"
    ? OpenTelemetry.Sdk.CreateTracerProviderBuilder()
        .ConfigureResource(r => r.AddService("distill-cli"))
        .AddSource(Distill.Mesh.ServiceDefaults.MeshTelemetry.Name, "Grpc.Net.Client")
        .AddHttpClientInstrumentation()
        .AddProcessor(new Distill.Mesh.ServiceDefaults.RunIdProcessor())
        .AddOtlpExporter()
        .Build()
    : null;
// Ctrl-C (or SIGTERM) once: the command's token is cancelled and it stops cleanly (checkpoints
// and lock files closed, exit code 130), however long that takes; a second one ends the process.
using var stop = new CancellationTokenSource();
using var interrupt = Distill.Mesh.Cli.Interrupts.Register(stop);
try
{
    return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null }, stop.Token);
}
catch (Exception e) when (CommandRunner.IsUserError(e))
{
    Console.Error.WriteLine($"error: {CommandRunner.Describe(e)}");
    return 1;
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    Console.Error.WriteLine("interrupted");
    return 130;
}
