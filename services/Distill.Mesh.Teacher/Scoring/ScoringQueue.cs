using System.Threading.Channels;
using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Teachers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TorchSharp;

namespace Distill.Mesh.Teacher.Scoring;

/// <summary>The scoring queue is full: the client should back off and retry.</summary>
public sealed class QueueFullException(string message) : Exception(message);

/// <summary>
/// Dynamic batching: concurrent requests wait in a bounded queue; one worker packs as many as fit
/// the token budget into a forward pass, then encodes each sequence's signal. Tensor work runs on
/// the worker's own thread, never on a request's.
/// </summary>
public sealed class ScoringQueue : IAsyncDisposable
{
    private sealed record Job(int[] Ids, SignalRequest Request, TaskCompletionSource<TeacherTarget> Done, CancellationToken Cancellation);

    private readonly Channel<Job> _channel;
    private readonly TeacherModel _model;
    private readonly TeacherOptions _options;
    private readonly ILogger<ScoringQueue> _logger;
    private readonly Task _worker;
    private readonly string _teacher;

    public ScoringQueue(TeacherModel model, IOptions<TeacherOptions> options, ILogger<ScoringQueue> logger)
    {
        _model = model;
        _options = options.Value;
        _logger = logger;
        _channel = Channel.CreateBounded<Job>(new BoundedChannelOptions(_options.MaxQueue) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _teacher = TeacherMetrics.Label(_options.Model);
        TeacherMetrics.ObserveQueue(_teacher, () => _channel.Reader.Count);
        _worker = Task.Factory.StartNew(Work, TaskCreationOptions.LongRunning).Unwrap();
    }

    /// <summary>Forward passes run so far and sequences they held (batching efficiency).</summary>
    public long Batches { get; private set; }

    public long Sequences { get; private set; }

    /// <summary>
    /// The signal of one sequence (B·(T−1) rows of the teacher's forward, sliced to it). The caller
    /// owns the returned tensors: it encodes them (on its own thread, so encodes run in parallel
    /// while this queue's worker moves on) and disposes them.
    /// </summary>
    /// <remarks>A full queue makes the caller wait for room (backpressure), up to Teacher:QueueWait; then the request is refused.</remarks>
    public async Task<TeacherTarget> ScoreAsync(int[] ids, SignalRequest request, CancellationToken cancellationToken)
    {
        var job = new Job(ids, request, new TaskCompletionSource<TeacherTarget>(TaskCreationOptions.RunContinuationsAsynchronously), cancellationToken);
        if (!_channel.Writer.TryWrite(job))
        {
            using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            waiting.CancelAfter(_options.QueueWait);
            try
            {
                await _channel.Writer.WriteAsync(job, waiting.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new QueueFullException($"the teacher's queue stayed full ({_options.MaxQueue} requests waiting) for {_options.QueueWait.TotalSeconds:0.#} s; retry later");
            }
        }

        return await job.Done.Task.WaitAsync(cancellationToken);
    }

    private async Task Work()
    {
        var reader = _channel.Reader;
        Job? carried = null;
        while (carried is not null || await reader.WaitToReadAsync())
        {
            var jobs = new List<Job>();
            var tokens = 0;
            if (carried is not null)
            {
                jobs.Add(carried);
                tokens = carried.Ids.Length;
                carried = null;
            }

            var window = System.Diagnostics.Stopwatch.StartNew();
            while (true)
            {
                if (!reader.TryRead(out var next))
                {
                    // Not full yet: give the rest of a micro-batch a moment to arrive.
                    var left = _options.BatchWindow - window.Elapsed;
                    if (jobs.Count == 0 || tokens >= _options.MaxBatchTokens || left <= TimeSpan.Zero)
                        break;
                    var wait = reader.WaitToReadAsync().AsTask();
                    if (await Task.WhenAny(wait, Task.Delay(left)) != wait)
                        break;
                    continue;
                }

                if (next.Cancellation.IsCancellationRequested)
                {
                    next.Done.TrySetCanceled(next.Cancellation);
                    continue;
                }

                if (jobs.Count > 0 && tokens + next.Ids.Length > _options.MaxBatchTokens)
                {
                    carried = next;
                    break;
                }

                jobs.Add(next);
                tokens += next.Ids.Length;
            }

            if (jobs.Count > 0)
                Run(jobs);
        }
    }

    private void Run(List<Job> jobs)
    {
        using var activity = MeshTelemetry.Source.StartActivity("teacher.forward");
        activity?.SetTag("distill.sequences", jobs.Count);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            // One forward pass per request signature (usually one: a run asks for one format).
            // Sampled requests carry their own seeds, so each is scored alone.
            foreach (var group in jobs.GroupBy(j => j.Request.Format == SignalFormat.Sampled ? (object)j : j.Request with { Precision = SignalPrecision.Fp32, Seed = 0 }))
            {
                using var scope = torch.NewDisposeScope();
                var members = group.ToList();
                using var batch = Batching.Collate(members.Select(j => new TokenizedExample(j.Ids, j.Ids.Select(i => (long)i).ToArray())).ToList(), padTokenId: 0);
                using var rows = _model.Require().Score(batch, members[0].Request);
                var stride = batch.InputIds.shape[1] - 1;
                for (var i = 0; i < members.Count; i++)
                {
                    var target = rows.Block(i * stride, members[i].Ids.Length - 1).Copy().Detached();
                    members[i].Done.TrySetResult(target);
                }
            }

            Batches++;
            Sequences += jobs.Count;
            TeacherMetrics.Forward(_teacher, jobs.Sum(j => (long)j.Ids.Length), System.Diagnostics.Stopwatch.GetElapsedTime(started));
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Scoring a batch of {Count} sequences failed", jobs.Count);
            foreach (var job in jobs)
                job.Done.TrySetException(e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        await _worker;
    }
}
