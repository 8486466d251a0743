using System.Globalization;
using System.Text.Json.Nodes;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>The event history, watch fan-out and waiting for a state.</summary>
internal sealed partial class ObjectStore
{
    /// <summary>How many events a watch can resume across before its resourceVersion is "too old" (410).</summary>
    public const int HistoryLimit = 1000;

    private readonly Queue<StoredEvent> _history = new();
    private readonly List<WatchSubscription> _watches = [];
    private readonly List<Action<StoredEvent>> _observers = [];

    // Every event with a resourceVersion above this is still in the history.
    private long _historyFloor;

    /// <summary>Raised under the store's lock, in resourceVersion order, for every committed change.</summary>
    public event Action<StoredEvent>? Committed;

    /// <summary>
    /// Opens a watch. Absent or "0" resourceVersion: ADDED for every matching object, then live events. Otherwise the
    /// history after that version is replayed first, or the watch gets a 410 Expired error when it is too old.
    /// </summary>
    public WatchSubscription Watch(ApiResource resource, string? ns, LabelSelector labels, FieldSelector fields, string? resourceVersion)
    {
        var watch = new WatchSubscription(resource, ns, labels, fields);
        lock (_gate)
        {
            if (string.IsNullOrEmpty(resourceVersion) || resourceVersion == "0")
            {
                var existing = _objects
                    .Where(kv => kv.Key.Resource == resource)
                    .OrderBy(kv => Number(Metadata(kv.Value)["resourceVersion"]));
                foreach (var (key, obj) in existing)
                    watch.Offer(new StoredEvent("ADDED", key, obj, previous: null, Number(Metadata(obj)["resourceVersion"])));
            }
            else
            {
                if (!long.TryParse(resourceVersion, NumberStyles.None, CultureInfo.InvariantCulture, out var from))
                    throw ApiError.BadRequest($"invalid resource version \"{resourceVersion}\"");
                if (from < _historyFloor)
                {
                    watch.Fail(ApiError.Expired(from, _historyFloor + 1));
                    return watch;
                }

                foreach (var e in _history.Where(e => e.ResourceVersion > from))
                    watch.Offer(e);
            }

            _watches.Add(watch);
        }

        return watch;
    }

    public void StopWatching(WatchSubscription watch)
    {
        lock (_gate)
            _watches.Remove(watch);
        watch.Close();
    }

    /// <summary>Ends every open watch (the server is stopping).</summary>
    public void CloseWatches()
    {
        lock (_gate)
        {
            foreach (var watch in _watches)
                watch.Close();
            _watches.Clear();
        }
    }

    /// <summary>Forgets the history: a watch from any resourceVersion before now gets 410 Expired.</summary>
    public void ExpireHistory()
    {
        lock (_gate)
        {
            _history.Clear();
            _historyFloor = _resourceVersion;
        }
    }

    /// <summary>Completes with the object once <paramref name="predicate"/> holds for it (now or after a later write).</summary>
    public async Task<JsonObject> WaitForAsync(ApiResource resource, string ns, string name, Func<JsonObject, bool> predicate, TimeSpan timeout)
    {
        var key = new ObjectKey(resource, ns, name);
        var found = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Check(JsonObject obj)
        {
            try
            {
                var copy = Clone(obj);
                if (predicate(copy))
                    found.TrySetResult(copy);
            }
            catch (Exception e)
            {
                // A throwing predicate fails the wait, not the write that triggered it.
                found.TrySetException(e);
            }
        }

        void OnEvent(StoredEvent e)
        {
            if (e.Key == key && e.Type != "DELETED")
                Check(e.Object);
        }

        lock (_gate)
        {
            if (_objects.TryGetValue(key, out var current))
                Check(current);
            _observers.Add(OnEvent);
        }

        try
        {
            return await found.Task.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{resource.QualifiedName} {ns}/{name} did not reach the expected state within {timeout}; it is now: {Get(resource, ns, name)?.ToJsonString() ?? "absent"}");
        }
        finally
        {
            lock (_gate)
                _observers.Remove(OnEvent);
        }
    }

    /// <summary>Completes once the object does not exist (now or after a later removal).</summary>
    public async Task WaitForAbsentAsync(ApiResource resource, string ns, string name, TimeSpan timeout)
    {
        var key = new ObjectKey(resource, ns, name);
        var gone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnEvent(StoredEvent e)
        {
            if (e.Key == key && e.Type == "DELETED")
                gone.TrySetResult();
        }

        lock (_gate)
        {
            if (!_objects.ContainsKey(key))
                gone.TrySetResult();
            _observers.Add(OnEvent);
        }

        try
        {
            await gone.Task.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{resource.QualifiedName} {ns}/{name} still exists after {timeout}: {Get(resource, ns, name)?.ToJsonString()}");
        }
        finally
        {
            lock (_gate)
                _observers.Remove(OnEvent);
        }
    }

    private void Publish(StoredEvent e)
    {
        _history.Enqueue(e);
        while (_history.Count > HistoryLimit)
            _historyFloor = _history.Dequeue().ResourceVersion;
        foreach (var watch in _watches)
            watch.Offer(e);
        foreach (var observer in _observers.ToList())
            observer(e);
        Committed?.Invoke(e);
    }
}
