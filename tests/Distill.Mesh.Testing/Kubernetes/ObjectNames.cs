using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>Object name rules the real API server enforces, and <c>generateName</c> suffixes.</summary>
internal static partial class ObjectNames
{
    private const string SuffixAlphabet = "bcdfghjklmnpqrstvwxz2456789";

    /// <summary>Throws a 422 when <paramref name="name"/> is not a valid name for <paramref name="resource"/>.</summary>
    public static void Validate(ApiResource resource, string name)
    {
        // Services become DNS labels (DNS-1035); everything else here is a DNS-1123 subdomain.
        if (resource is { Group: "", Plural: "services" })
        {
            if (name.Length > 63 || !Dns1035Label().IsMatch(name))
                throw ApiError.Invalid($"{resource.Kind} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character, at most 63 characters");
        }
        else if (name.Length > 253 || !Dns1123Subdomain().IsMatch(name))
        {
            throw ApiError.Invalid($"{resource.Kind} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character, at most 253 characters");
        }
    }

    /// <summary>The real server's scheme: the prefix cut to 58 characters, then five random characters.</summary>
    public static string Generate(string prefix)
    {
        var cut = prefix.Length > 58 ? prefix[..58] : prefix;
        var suffix = string.Create(5, 0, (span, _) =>
        {
            for (var i = 0; i < span.Length; i++)
                span[i] = SuffixAlphabet[RandomNumberGenerator.GetInt32(SuffixAlphabet.Length)];
        });
        return cut + suffix;
    }

    public static string Timestamp(DateTime utc) => utc.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex Dns1123Subdomain();

    [GeneratedRegex("^[a-z]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex Dns1035Label();
}
