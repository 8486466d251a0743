namespace Distill.Mesh.Teacher.Jobs;

/// <summary>
/// How far a precompute job's shard got, after each micro-batch: what a host that runs the job in
/// its own process (`distill teacher precompute`) registers as <c>IProgress&lt;PrecomputeProgress&gt;</c> to draw a bar.
/// </summary>
/// <param name="Shard">The shard being scored.</param>
/// <param name="Shards">The run's precompute shards.</param>
/// <param name="Done">Micro-batches of this shard done.</param>
/// <param name="Total">Micro-batches of this shard in all.</param>
public sealed record PrecomputeProgress(int Shard, int Shards, long Done, long Total);
