using System.CommandLine;
using System.Text.Json.Nodes;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Specs.Storage;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill configs</c>: the ready recipes and model configs that ship inside the CLI (listed,
/// copied out to edit), and the reference of every recipe key generated from the config types.
/// </summary>
internal static class ConfigsCommand
{
    private const string Prefix = "configs/";

    public static Command Create() => new("configs", "The ready recipes and model configs, and every recipe key") { List(), Copy(), Keys() };

    /// <summary>The shipped files by name: "tiny-kd" for configs/tiny-kd.yaml, "models/tiny-llama" for configs/models/tiny-llama.json.</summary>
    private static IReadOnlyDictionary<string, string> Shipped() =>
        typeof(ConfigsCommand).Assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal))
            .ToDictionary(n => Path.ChangeExtension(n[Prefix.Length..], null), n => n, StringComparer.Ordinal);

    private static string Read(string resource)
    {
        using var stream = typeof(ConfigsCommand).Assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static Command List()
    {
        var json = new Option<bool>("--json") { Description = "print JSON instead of a table" };
        var command = new Command("ls", "List the ready recipes and model configs") { json };
        command.SetAction((parse, output) =>
        {
            var rows = Shipped().OrderBy(p => p.Key.Contains('/')).ThenBy(p => p.Key, StringComparer.Ordinal)
                .Select(p => new ShippedConfig(p.Key, p.Key.StartsWith("models/", StringComparison.Ordinal) ? "model" : "recipe", Describe(p.Value, Read(p.Value)))).ToList();
            if (parse.GetValue(json))
                CommandRunner.WriteJson(output, rows);
            else
                Tables.Write(output, null, ["name", "kind", "what it is"], rows.Select(r => (IReadOnlyList<string>)[r.Name, r.Kind, r.Description]));
            return 0;
        });
        return command;
    }

    private sealed record ShippedConfig(string Name, string Kind, string Description);

    /// <summary>A recipe's first sentence of its leading comment; a model config's family and size.</summary>
    private static string Describe(string resource, string text)
    {
        if (resource.EndsWith(".yaml", StringComparison.Ordinal))
        {
            var comment = string.Join(" ", text.Split('\n').TakeWhile(l => l.StartsWith('#')).Select(l => l.TrimStart('#').Trim()));
            return comment.IndexOf(". ", StringComparison.Ordinal) is var end and > 0 ? comment[..(end + 1)] : comment;
        }

        var config = JsonNode.Parse(text)!;
        return $"{config["model_type"]}: {config["num_hidden_layers"]} layers, hidden {config["hidden_size"]}, vocab {config["vocab_size"]}";
    }

    private static Command Copy()
    {
        var name = new Argument<string>("name") { Description = "a name from `distill configs ls` (e.g. tiny-kd, models/llama-100m)" };
        var destination = new Argument<string>("dest") { Description = "file to write, or an existing folder to write it into" };
        var force = new Option<bool>("--force") { Description = "replace an existing file" };
        var command = new Command("cp", "Copy a ready recipe or model config out, to edit") { name, destination, force };
        command.SetAction((parse, output) =>
        {
            var shipped = Shipped();
            var wanted = Path.ChangeExtension(parse.GetValue(name)!, null)!;
            if (!shipped.TryGetValue(wanted, out var resource))
            {
                var hint = ConfigBinder.Suggest(wanted, shipped.Keys);
                throw new ArgumentException($"no shipped config '{wanted}'{(hint is null ? "" : $" (did you mean '{hint}'?)")}; `distill configs ls` lists them");
            }

            var target = parse.GetValue(destination)!;
            if (Directory.Exists(target))
                target = Path.Combine(target, Path.GetFileName(resource));
            if (File.Exists(target) && !parse.GetValue(force))
                throw new IOException($"{target} exists; pass --force to replace it");
            var text = Read(resource);
            AtomicFile.WriteAllText(target, text);
            output.WriteLine($"wrote {target}");
            if (text.Contains("../", StringComparison.Ordinal))
                output.WriteLine("its paths are relative to the file: edit them, or give them as overrides (student.model=... teachers.0.model=... dataset.path=...)");
            return 0;
        });
        return command;
    }

    private static Command Keys()
    {
        var json = new Option<bool>("--json") { Description = "print JSON instead of a table" };
        var markdown = new Option<bool>("--markdown") { Description = "print a Markdown table (what the README holds)" };
        var command = new Command("keys", "Every recipe key with its type, default and meaning (generated from the config types)") { json, markdown };
        command.SetAction((parse, output) =>
        {
            var keys = ConfigKeys.All();
            if (parse.GetValue(json))
            {
                CommandRunner.WriteJson(output, keys);
                return 0;
            }

            if (parse.GetValue(markdown))
            {
                output.Write(Markdown(keys));
                return 0;
            }

            Tables.Write(output, null, ["key", "type", "default", "meaning"], keys.Select(k => (IReadOnlyList<string>)[k.Key, k.Type, k.Default, k.Meaning]));
            return 0;
        });
        return command;
    }

    /// <summary>The key reference as a Markdown table, one key per row.</summary>
    public static string Markdown(IEnumerable<ConfigKey> keys) =>
        "| key | type | default | meaning |\n|---|---|---|---|\n"
        + string.Concat(keys.Select(k => $"| `{k.Key}` | {k.Type} | {(k.Default.Length == 0 ? "" : $"`{k.Default}`")} | {k.Meaning.Replace("|", "\\|", StringComparison.Ordinal)} |\n"));
}
