namespace Distill.Mesh.Extractor;

/// <summary>The <c>Extractor</c> configuration section (environment variables <c>Extractor__AllowedRoots__0</c>, <c>Extractor__JobSpec</c>, ...).</summary>
public sealed class ExtractorOptions
{
    /// <summary>Folders the service may read models from and write adapters to; empty: anywhere.</summary>
    public List<string> AllowedRoots { get; set; } = [];

    /// <summary>Job mode: extract for the run spec in this file (its extract section), then exit.</summary>
    public string? JobSpec { get; set; }

    /// <summary>Job mode: the run's id (default: DISTILL_RUN_ID, else the spec file's name).</summary>
    public string? JobRunId { get; set; }

    /// <summary>Job mode: the runs volume; the run's adapter goes to &lt;runs&gt;/&lt;run id&gt;/extract, as the trainer lays it out.</summary>
    public string RunsDirectory { get; set; } = "runs";

    /// <summary>Job mode: the shard this pod computes (default: JOB_COMPLETION_INDEX, as an Indexed Job sets it).</summary>
    public int? JobShard { get; set; }

    /// <summary>Job mode: merge the finished shards into the adapter instead of computing one.</summary>
    public bool JobConsolidate { get; set; }

    /// <summary>Job mode's run id.</summary>
    public string JobId() => JobRunId ?? Path.GetFileNameWithoutExtension(JobSpec ?? "");

}
