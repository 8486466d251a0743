using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace Distill.Mesh.Operator.Tests.Cluster;

/// <summary>Reading and writing the fake API server's JSON objects as the typed models the client uses.</summary>
internal static class Objects
{
    public static T Typed<T>(JsonObject obj) => KubernetesJson.Deserialize<T>(obj.ToJsonString());

    public static JsonObject Node(object value) => JsonNode.Parse(KubernetesJson.Serialize(value))!.AsObject();

    public static string Now() => DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A generated name's random suffix, as the API server makes them (lowercase letters and digits).</summary>
    public static string Suffix(int length = 5)
    {
        const string alphabet = "bcdfghjklmnpqrstvwxz2456789";
        return string.Concat(Enumerable.Range(0, length).Select(_ => alphabet[Random.Shared.Next(alphabet.Length)]));
    }

    public static bool Terminal(V1Pod pod) => pod.Status?.Phase is "Succeeded" or "Failed";

    public static bool Deleting(IKubernetesObject<V1ObjectMeta> obj) => obj.Metadata.DeletionTimestamp is not null;

    public static bool OwnedBy(V1ObjectMeta metadata, string uid) => metadata.OwnerReferences?.Any(o => o.Uid == uid) == true;

    public static bool Ready(V1Pod pod) => pod.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;

    /// <summary>Whether every label of <paramref name="selector"/> is on <paramref name="labels"/>.</summary>
    public static bool Matches(IDictionary<string, string>? selector, IDictionary<string, string>? labels) =>
        selector is { Count: > 0 } && selector.All(s => labels?.TryGetValue(s.Key, out var value) == true && value == s.Value);
}
