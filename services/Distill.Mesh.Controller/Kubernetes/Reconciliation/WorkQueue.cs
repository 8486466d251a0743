using System.Threading.Channels;

namespace Distill.Mesh.Controller.Kubernetes.Reconciliation;

/// <summary>
/// Keys waiting to be reconciled, as controller-runtime's queue keeps them: a key is queued at
/// most once however many events name it, a key being processed is never handed to a second
/// worker (an event that arrives meanwhile queues it again for afterwards), failures come back
/// after an exponential backoff with jitter, and a reconcile may ask to come back later.
/// </summary>
public sealed class WorkQueue<TKey> : IDisposable
    where TKey : notnull
{
    private readonly Channel<TKey> _ready = Channel.CreateUnbounded<TKey>();
    private readonly HashSet<TKey> _queued = [];
    private readonly HashSet<TKey> _active = [];
    private readonly HashSet<TKey> _dirty = [];
    private readonly Dictionary<TKey, int> _failures = [];
    private readonly Lock _lock = new();
    private readonly TimeSpan _firstDelay;
    private readonly TimeSpan _maxDelay;
    private readonly CancellationTokenSource _stopping = new();

    public WorkQueue(TimeSpan? firstDelay = null, TimeSpan? maxDelay = null)
    {
        _firstDelay = firstDelay ?? TimeSpan.FromMilliseconds(500);
        _maxDelay = maxDelay ?? TimeSpan.FromMinutes(5);
    }

    /// <summary>Keys waiting (for tests and metrics).</summary>
    public int Depth
    {
        get
        {
            lock (_lock)
                return _queued.Count;
        }
    }

    public void Add(TKey key)
    {
        lock (_lock)
        {
            if (_active.Contains(key))
            {
                _dirty.Add(key);
                return;
            }

            if (_queued.Add(key))
                _ready.Writer.TryWrite(key);
        }
    }

    /// <summary>Queues <paramref name="key"/> after <paramref name="delay"/>.</summary>
    public void AddAfter(TKey key, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            Add(key);
            return;
        }

        _ = Task.Delay(delay, _stopping.Token).ContinueWith(t =>
        {
            if (!t.IsCanceled)
                Add(key);
        }, TaskScheduler.Default);
    }

    /// <summary>Waits for the next key; the caller must call <see cref="Done"/> with it.</summary>
    public async ValueTask<TKey> TakeAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var key = await _ready.Reader.ReadAsync(cancellationToken);
            lock (_lock)
            {
                if (!_queued.Remove(key))
                    continue;
                _active.Add(key);
                return key;
            }
        }
    }

    /// <summary>Ends work on <paramref name="key"/>: a success forgets its failures, a failure brings it back after the backoff.</summary>
    public void Done(TKey key, bool failed)
    {
        TimeSpan? retry = null;
        lock (_lock)
        {
            _active.Remove(key);
            if (failed)
            {
                var failures = _failures[key] = _failures.GetValueOrDefault(key) + 1;
                var delay = Math.Min(_maxDelay.TotalMilliseconds, _firstDelay.TotalMilliseconds * Math.Pow(2, Math.Min(failures - 1, 30)));
                // Jitter of ±20 % keeps many failing keys from retrying in lockstep.
                retry = TimeSpan.FromMilliseconds(delay * (0.8 + 0.4 * Random.Shared.NextDouble()));
            }
            else
            {
                _failures.Remove(key);
            }

            if (_dirty.Remove(key) && retry is null && _queued.Add(key))
                _ready.Writer.TryWrite(key);
        }

        if (retry is { } after)
            AddAfter(key, after);
    }

    /// <summary>Failures in a row of <paramref name="key"/>.</summary>
    public int Failures(TKey key)
    {
        lock (_lock)
            return _failures.GetValueOrDefault(key);
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _stopping.Dispose();
        _ready.Writer.TryComplete();
    }
}
