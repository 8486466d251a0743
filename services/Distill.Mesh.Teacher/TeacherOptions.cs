namespace Distill.Mesh.Teacher;

/// <summary>Teacher service settings (configuration section "Teacher").</summary>
public sealed class TeacherOptions
{
    /// <summary>HF model folder of the teacher.</summary>
    public string Model { get; set; } = "";

    /// <summary>float32 or bfloat16.</summary>
    public string Dtype { get; set; } = "float32";

    /// <summary>cpu, cuda or cuda:N (a CUDA build on a GPU node).</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>Redis connection string; empty uses the in-process cache.</summary>
    public string? Redis { get; set; }

    /// <summary>Bytes the in-process cache may hold.</summary>
    public long CacheBytes { get; set; } = 512L << 20;

    /// <summary>After two failed Redis calls, how long Redis is skipped (every lookup a miss) before one call tries it again.</summary>
    public TimeSpan RedisBreak { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long cached signals live in Redis.</summary>
    public TimeSpan CacheTtl { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Requests waiting to be scored; further ones wait up to QueueWait for room, then are refused (RESOURCE_EXHAUSTED).</summary>
    public int MaxQueue { get; set; } = 256;

    /// <summary>How long a request waits for room in a full queue before it is refused with RESOURCE_EXHAUSTED.</summary>
    public TimeSpan QueueWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Tokens packed into one forward pass.</summary>
    public int MaxBatchTokens { get; set; } = 8192;

    /// <summary>
    /// After the first waiting request, how long the batcher waits for more before a forward pass
    /// that is not yet full (a client sends a micro-batch's sequences one after another).
    /// </summary>
    public TimeSpan BatchWindow { get; set; } = TimeSpan.FromMilliseconds(2);

    /// <summary>Longest sequence one request may carry.</summary>
    public int MaxSequenceTokens { get; set; } = 8192;

    /// <summary>
    /// Precompute job mode: fill the cache (Teacher:Redis) with this teacher's signal for the kd run
    /// in this spec file — shard <see cref="JobShard"/> of precompute.shards — then exit.
    /// </summary>
    public string? JobSpec { get; set; }

    /// <summary>Job mode: the folder relative paths in the spec resolve against (unset: they must be absolute, as on a cluster).</summary>
    public string? JobSpecFolder { get; set; }

    /// <summary>Job mode: the shard this pod scores (default: JOB_COMPLETION_INDEX, as an Indexed Job sets it; 0 with one shard).</summary>
    public int? JobShard { get; set; }

}
