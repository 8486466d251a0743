namespace Distill.Mesh.Cli.Tests;

/// <summary>
/// Tests that read the process's meters through a host's exporter: every host of the process
/// reads every meter, so they run alone, after the other tests' hosts have gone.
/// </summary>
[CollectionDefinition(nameof(ProcessMetrics), DisableParallelization = true)]
public sealed class ProcessMetrics;
