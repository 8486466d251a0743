namespace Distill.Mesh.Controller.Runs;

/// <summary>The controller's settings (configuration section "Controller"; environment variables <c>Controller__RunsDirectory</c>, ...).</summary>
public sealed class ControllerOptions
{
    /// <summary>local (the services on this machine) or kubernetes.</summary>
    public string Backend { get; set; } = "local";

    /// <summary>Where the local backend keeps its run records (one JSON file per run).</summary>
    public string RunsDirectory { get; set; } = "controller-runs";

    /// <summary>The trainer for runs whose spec names none (mesh.trainer).</summary>
    public string Trainer { get; set; } = "http://127.0.0.1:7102";

    /// <summary>Whether the folders a spec names are on this machine and checked at Submit (the local backend shares the trainer's machine).</summary>
    public bool CheckPaths { get; set; } = true;

    /// <summary>Deadline of each call to another service.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
