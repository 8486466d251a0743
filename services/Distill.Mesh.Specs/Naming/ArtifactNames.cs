using System.Text.RegularExpressions;

namespace Distill.Mesh.Specs.Naming;

/// <summary>A parsed artifact reference: an id, a name with a version, a name with a tag, or a name (its newest version).</summary>
public sealed record ArtifactReference(string? Id, string? Name, int? Version, string? Tag)
{
    public override string ToString() => Id ?? (Version is { } v ? $"{Name}:{v}" : Tag is { } t ? $"{Name}@{t}" : Name!);
}

/// <summary>What names, tags, file paths and references may look like; everything else is refused before it touches the disk.</summary>
public static partial class ArtifactNames
{
    /// <summary>The tag that always means the newest version.</summary>
    public const string Latest = "latest";

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9._+-]{0,254}$", RegexOptions.CultureInvariant)]
    private static partial Regex SegmentPattern();

    [GeneratedRegex("^[0-9a-f]{64}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdPattern();

    public static string CheckName(string name) => NamePattern().IsMatch(name) && !name.Contains("..", StringComparison.Ordinal)
        ? name
        : throw new ArgumentException($"invalid artifact name '{Shorten(name)}': use 1-128 of a-z 0-9 . _ - starting with a letter or digit");

    public static string CheckTag(string tag) => TagPattern().IsMatch(tag)
        ? tag
        : throw new ArgumentException($"invalid tag '{Shorten(tag)}': use 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit");

    /// <summary>A relative path inside an artifact: '/'-separated segments, no '..', no absolute or hidden parts, at most 8 deep.</summary>
    public static string CheckPath(string path)
    {
        var segments = path.Split('/');
        if (path.Length == 0 || path.Length > 1024 || segments.Length > 8 || !segments.All(s => SegmentPattern().IsMatch(s) && s != ".." && s != "."))
            throw new ArgumentException($"invalid file path '{Shorten(path)}' in the manifest: relative, '/'-separated segments of A-Z a-z 0-9 . _ + - (no '..', no leading '.' or '/', at most 8 deep)");
        return path;
    }

    /// <summary>Parses an id, <c>name</c>, <c>name:VERSION</c> or <c>name@TAG</c>.</summary>
    public static ArtifactReference Parse(string reference)
    {
        if (IdPattern().IsMatch(reference))
            return new ArtifactReference(reference, null, null, null);
        var at = reference.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
            return new ArtifactReference(null, CheckName(reference[..at]), null, CheckTag(reference[(at + 1)..]));
        var colon = reference.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            return int.TryParse(reference[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version) && version > 0
                ? new ArtifactReference(null, CheckName(reference[..colon]), version, null)
                : throw new ArgumentException($"invalid reference '{Shorten(reference)}': the part after ':' is a version number (use name@TAG for tags)");
        }

        return new ArtifactReference(null, CheckName(reference), null, null);
    }

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "…";
}
