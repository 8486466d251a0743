using System.Text.Json;
using System.Text.RegularExpressions;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Deployment.Tests;

/// <summary>
/// build/Dockerfile read the way the tests need it: its stages, what each copies from where, its
/// environment, exposed ports and entrypoint. Continuation lines are joined; comments dropped.
/// </summary>
internal sealed partial class Dockerfile
{
    public sealed record Stage(string Name, string From, List<string> Runs, List<(string From, string Source, string Destination)> Copies,
        Dictionary<string, string> Environment, List<int> Exposed, string? WorkDir, string[]? EntryPoint, string? User = null);

    public static string PathInRepository => Path.Combine(SharedData.RepositoryRoot, "build", "Dockerfile");

    public List<Stage> Stages { get; } = [];

    public Stage this[string name] => Stages.Single(s => s.Name == name);

    [GeneratedRegex(@"^(?<key>[A-Za-z_][A-Za-z0-9_]*)=(?<value>""[^""]*""|\S*)\s*")]
    private static partial Regex EnvPair();

    public static Dockerfile Load()
    {
        var file = new Dockerfile();
        var lines = new List<string>();
        var pending = "";
        foreach (var raw in File.ReadAllLines(PathInRepository))
        {
            var line = raw.Trim();
            if (pending.Length == 0 && (line.Length == 0 || line.StartsWith('#')))
                continue;
            if (line.EndsWith('\\'))
            {
                pending += line[..^1] + " ";
                continue;
            }

            lines.Add(pending + line);
            pending = "";
        }

        Stage? stage = null;
        foreach (var line in lines)
        {
            var space = line.IndexOf(' ');
            var (instruction, rest) = (line[..space].ToUpperInvariant(), line[(space + 1)..].Trim());
            switch (instruction)
            {
                case "FROM":
                    var parts = rest.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    stage = new Stage(parts.Length >= 3 && parts[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? parts[2] : "", parts[0], [], [], [], [], null, null);
                    file.Stages.Add(stage);
                    break;
                case "RUN":
                    stage!.Runs.Add(rest);
                    break;
                case "COPY":
                    var words = rest.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    var from = words.FirstOrDefault(w => w.StartsWith("--from=", StringComparison.Ordinal))?["--from=".Length..] ?? "";
                    var paths = words.Where(w => !w.StartsWith("--", StringComparison.Ordinal)).ToArray();
                    stage!.Copies.Add((from, paths[0], paths[^1]));
                    break;
                case "ENV":
                    for (var text = rest; text.Length > 0;)
                    {
                        var match = EnvPair().Match(text);
                        Assert.True(match.Success, $"Dockerfile: cannot read ENV '{text}'");
                        stage!.Environment[match.Groups["key"].Value] = match.Groups["value"].Value.Trim('"');
                        text = text[match.Length..];
                    }

                    break;
                case "EXPOSE":
                    stage!.Exposed.AddRange(rest.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse));
                    break;
                case "WORKDIR":
                    file.Stages[^1] = stage = stage! with { WorkDir = rest };
                    break;
                case "USER":
                    file.Stages[^1] = stage = stage! with { User = rest };
                    break;
                case "ENTRYPOINT":
                    file.Stages[^1] = stage = stage! with { EntryPoint = JsonSerializer.Deserialize<string[]>(rest) };
                    break;
            }
        }

        return file;
    }

    /// <summary>A stage's environment with the stages it is built FROM (the nearer stage wins).</summary>
    public Dictionary<string, string> EnvironmentOf(string name)
    {
        var chain = new List<Stage>();
        for (var stage = this[name]; ; stage = this[stage.From])
        {
            chain.Insert(0, stage);
            if (!Stages.Any(s => s.Name == stage.From))
                break;
        }

        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var stage in chain)
            foreach (var (key, value) in stage.Environment)
                environment[key] = value;
        return environment;
    }

    /// <summary>The working directory a stage inherits or sets.</summary>
    public string? WorkDirOf(string name) => Inherited(name, s => s.WorkDir);

    /// <summary>The user a stage inherits or sets.</summary>
    public string? UserOf(string name) => Inherited(name, s => s.User);

    private string? Inherited(string name, Func<Stage, string?> value)
    {
        for (var stage = this[name]; ; stage = this[stage.From])
        {
            if (value(stage) is { } found)
                return found;
            if (!Stages.Any(s => s.Name == stage.From))
                return null;
        }
    }
}
