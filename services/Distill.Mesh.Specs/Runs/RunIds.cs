using System.Text.RegularExpressions;

namespace Distill.Mesh.Specs.Runs;

/// <summary>
/// Run ids: DNS-1035 labels of at most 40 characters (a letter first), so that every Kubernetes
/// object named after a run ("RUN-extract-consolidate", an Indexed Job's pods) stays a valid
/// 63-character name.
/// </summary>
public static partial class RunIds
{
    public const int MaxLength = 40;

    [GeneratedRegex("^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    /// <summary>The id, or an ArgumentException saying what an id may be.</summary>
    public static string Check(string id) => Pattern().IsMatch(id)
        ? id
        : throw new ArgumentException($"run_id '{(id.Length > 60 ? id[..60] + "…" : id)}' must be lowercase letters, digits and '-', start with a letter, not end with '-', at most {MaxLength} characters");

    /// <summary>A fresh id: run-YYYYMMDD-HHMMSS-xxxxxx.</summary>
    public static string New() => $"run-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..6]}";
}
