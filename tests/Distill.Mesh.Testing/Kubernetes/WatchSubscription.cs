using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>
/// One open watch: the events it should see, already framed as the newline-delimited JSON lines the API server
/// writes. Offered under the store's lock, read by the HTTP response at its own pace.
/// </summary>
internal sealed class WatchSubscription(ApiResource resource, string? ns, LabelSelector labels, FieldSelector fields)
{
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });

    public ChannelReader<string> Lines => _lines.Reader;

    /// <summary>
    /// Queues the event if it concerns this watch. With a selector, an object that starts matching arrives as
    /// ADDED and one that stops matching as DELETED, as the real server reports them.
    /// </summary>
    public void Offer(StoredEvent e)
    {
        if (e.Key.Resource != resource || (ns is not null && e.Key.Namespace != ns))
            return;
        var now = Selects(e.Object);
        var type = e.Type switch
        {
            "MODIFIED" when e.Previous is not null => (Selects(e.Previous), now) switch
            {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                _ => null,
            },
            _ => now ? e.Type : null,
        };
        if (type is not null)
            _lines.Writer.TryWrite($"{{\"type\":\"{type}\",\"object\":{e.Json}}}");
    }

    /// <summary>Sends the error as the real server does inside a watch (an ERROR event carrying a Status), then ends.</summary>
    public void Fail(ApiError error)
    {
        var line = new JsonObject { ["type"] = "ERROR", ["object"] = error.ToStatus() };
        _lines.Writer.TryWrite(line.ToJsonString());
        _lines.Writer.TryComplete();
    }

    public void Close() => _lines.Writer.TryComplete();

    private bool Selects(JsonObject obj) => labels.Matches(obj) && fields.Matches(obj);
}
