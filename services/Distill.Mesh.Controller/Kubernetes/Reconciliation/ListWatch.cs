using System.Net;
using k8s;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Reconciliation;

/// <summary>
/// List-then-watch, as an informer does it (KubernetesClient has none): list, hand every object
/// to the handler, watch from the list's resourceVersion, resume a watch that ends from the last
/// resourceVersion seen, relist when the server answers 410 Gone (the version is too old), and
/// back off with jitter after errors. KubernetesClient reports a watch's ERROR event (the 410)
/// only through its onError callback, then ends the enumeration; a watch that times out without
/// any event ends with an EndOfStream error; both are handled here.
/// </summary>
public static class ListWatch
{
    public delegate Task<(IReadOnlyList<T> Items, string ResourceVersion)> Lister<T>(CancellationToken cancellationToken);

    public delegate IAsyncEnumerable<(WatchEventType Type, T Item)> Watcher<T>(string resourceVersion, Action<Exception> onError, CancellationToken cancellationToken);

    public static async Task RunAsync<T>(string what, Lister<T> list, Watcher<T> watch, Action<WatchEventType, T> handle, ILogger logger, CancellationToken cancellationToken)
        where T : IKubernetesObject<V1ObjectMeta>
    {
        var backoff = TimeSpan.FromSeconds(1);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var (items, resourceVersion) = await list(cancellationToken);
                foreach (var item in items)
                    handle(WatchEventType.Added, item);
                backoff = TimeSpan.FromSeconds(1);
                while (!cancellationToken.IsCancellationRequested)
                {
                    Exception? reported = null;
                    try
                    {
                        await foreach (var (type, item) in watch(resourceVersion, e => reported ??= e, cancellationToken))
                        {
                            if (type == WatchEventType.Bookmark || item?.Metadata is null)
                            {
                                if (item?.Metadata?.ResourceVersion is { } bookmark)
                                    resourceVersion = bookmark;
                                continue;
                            }

                            resourceVersion = item.Metadata.ResourceVersion ?? resourceVersion;
                            handle(type, item);
                        }
                    }
                    catch (HttpRequestException e) when (e.InnerException is EndOfStreamException)
                    {
                        // A watch that timed out with nothing to say: resume it.
                    }

                    if (reported is not null && !(reported is HttpRequestException { InnerException: EndOfStreamException }))
                        throw reported;
                }
            }
            catch (Exception e) when (Gone(e))
            {
                logger.LogInformation("Watch of {What} expired (410 Gone); listing again", what);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning("Watch of {What} failed ({Error}); retrying in {Delay}", what, e.Message, backoff);
                await Task.Delay(backoff * (0.8 + 0.4 * Random.Shared.NextDouble()), cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
                backoff = TimeSpan.FromSeconds(Math.Min(30, backoff.TotalSeconds * 2));
            }
        }
    }

    /// <summary>410 Gone, as a watch ERROR event or as an HTTP answer.</summary>
    public static bool Gone(Exception e) => e switch
    {
        KubernetesException k => k.Status?.Code == 410 || k.Status?.Reason == "Expired" || k.Status?.Reason == "Gone",
        k8s.Autorest.HttpOperationException h => h.Response.StatusCode == HttpStatusCode.Gone,
        _ => e.InnerException is { } inner && Gone(inner),
    };
}
