using System.CommandLine;
using Distill.Mesh.Cli.Display;
using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.Clients.Registry;
using Distill.Mesh.ServiceDefaults;
using Grpc.Core;
using Grpc.Net.Client;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill adapters push/pull/ls/tag/rm</c>: the registry from the command line. Push takes a
/// PEFT adapter folder or a model folder (the kind is read from the folder); pull writes a folder
/// PEFT and vLLM load as is.
/// </summary>
internal static class AdaptersCommand
{
    private static Option<string> Registry() => new("--registry") { Description = "registry address", DefaultValueFactory = _ => $"http://127.0.0.1:{UpCommand.RegistryPort}" };

    public static Command Create() => new("adapters", "Push, pull, list, tag and remove adapters and student models in the registry (see `distill up`)")
    {
        Push(), Pull(), List(), Tag(), Remove(),
    };

    private static (RegistryService.RegistryServiceClient Client, GrpcChannel Channel) Open(ParseResult parse, Option<string> registry, Option<string?> trust, Option<string?> token)
    {
        var channel = MeshCliOptions.Channel(parse, parse.GetValue(registry)!, trust, token);
        return (new RegistryService.RegistryServiceClient(channel), channel);
    }

    private static Command Push()
    {
        var folder = new Argument<string>("folder") { Description = "PEFT adapter folder or HF model folder" };
        var name = new Option<string>("--name") { Description = "artifact name (versions accumulate under it)", Required = true };
        var baseModel = new Option<string?>("--base") { Description = "adapter's base model: a registry reference or a folder the registry can read (default: adapter_config.json's base_model_name_or_path)" };
        var method = new Option<string?>("--method") { Description = "how it was made (kd, sft, lora_extract, svd, moe, ...)" };
        var tag = new Option<string?>("--tag") { Description = "also tag the pushed version" };
        var (registry, token, trust) = (Registry(), MeshCliOptions.Token("the registry"), MeshCliOptions.Trust("the registry"));
        var command = new Command("push", "Push a folder as a new version") { folder, name, baseModel, method, tag, registry, token, trust };
        command.SetAction(async (parse, cancellationToken) => await Guard(parse, async output =>
        {
            var (client, channel) = Open(parse, registry, trust, token);
            using (channel)
            {
                var lineage = new Lineage { BaseModel = parse.GetValue(baseModel) ?? "", Method = parse.GetValue(method) ?? "" };
                var source = parse.GetValue(folder)!;
                var manifest = RegistryClient.ManifestOf(source, parse.GetValue(name)!, lineage);
                // A base model folder on this machine: record its fingerprint, so `ls` can filter by it.
                if (File.Exists(Path.Combine(manifest.Lineage.BaseModel, "config.json")))
                    manifest.Lineage.BaseFingerprint = Modeling.Checkpoints.SafetensorsCheckpoint.Fingerprint(manifest.Lineage.BaseModel);
                Artifact artifact;
                using (var display = ProgressDisplays.For(parse.InvocationConfiguration.Error))
                {
                    var phase = display.Start("push", manifest.Files.Sum(f => f.Size), ProgressUnit.Bytes, PlainLines.Quarters);
                    artifact = await new RegistryClient(client, MeshCliOptions.Headers(parse, token)).PushAsync(source, manifest, bytes => phase.Set(bytes), cancellationToken);
                    phase.Complete();
                }

                if (parse.GetValue(tag) is { } t)
                    artifact = await client.TagAsync(new TagRequest { Ref = artifact.Id, Tag = t }, MeshCliOptions.Headers(parse, token), cancellationToken: cancellationToken);
                output.WriteLine($"pushed {artifact.Manifest.Name}:{artifact.Version} ({artifact.Manifest.Kind.ToString().ToLowerInvariant()}, {artifact.TotalBytes:N0} bytes, {artifact.Manifest.Files.Count} files) id {artifact.Id}");
            }
        }));
        return command;
    }

    private static Command Pull()
    {
        var reference = new Argument<string>("ref") { Description = "name, name:VERSION, name@TAG or id" };
        var outFolder = new Option<string>("--out") { Description = "folder to write (must not exist or be empty)", Required = true };
        var (registry, token, trust) = (Registry(), MeshCliOptions.Token("the registry"), MeshCliOptions.Trust("the registry"));
        var command = new Command("pull", "Download a version into a folder (files verified by SHA-256)") { reference, outFolder, registry, token, trust };
        command.SetAction(async (parse, cancellationToken) => await Guard(parse, async output =>
        {
            var (client, channel) = Open(parse, registry, trust, token);
            using (channel)
            {
                Artifact artifact;
                using (var display = ProgressDisplays.For(parse.InvocationConfiguration.Error))
                {
                    var phase = display.Start("pull", null, ProgressUnit.Bytes, PlainLines.Quarters);
                    artifact = await new RegistryClient(client).PullAsync(parse.GetValue(reference)!, parse.GetValue(outFolder)!, bytes => phase.Set(bytes), cancellationToken: cancellationToken);
                    phase.Complete();
                }

                output.WriteLine($"pulled {artifact.Manifest.Name}:{artifact.Version} ({artifact.TotalBytes:N0} bytes) into {parse.GetValue(outFolder)}");
            }
        }));
        return command;
    }

    private static Command List()
    {
        var name = new Argument<string?>("name") { Description = "only this name", Arity = ArgumentArity.ZeroOrOne };
        var baseModel = new Option<string?>("--base") { Description = "only artifacts made for this base model (a model folder, or its fingerprint)" };
        var kind = new Option<string?>("--kind") { Description = "adapter or model" };
        var (registry, token, trust) = (Registry(), MeshCliOptions.Token("the registry"), MeshCliOptions.Trust("the registry"));
        var json = new Option<bool>("--json") { Description = "print JSON (a list of artifacts) instead of a table" };
        var command = new Command("ls", "List artifacts, newest first") { name, baseModel, kind, registry, token, trust, json };
        command.SetAction(async (parse, cancellationToken) => await Guard(parse, async output =>
        {
            var (client, channel) = Open(parse, registry, trust, token);
            using (channel)
            {
                var fingerprint = parse.GetValue(baseModel) is { } b
                    ? File.Exists(Path.Combine(b, "config.json")) ? Modeling.Checkpoints.SafetensorsCheckpoint.Fingerprint(b) : b
                    : "";
                var filter = parse.GetValue(kind)?.ToLowerInvariant() switch
                {
                    null => ArtifactKind.Unspecified,
                    "adapter" => ArtifactKind.Adapter,
                    "model" => ArtifactKind.Model,
                    var other => throw new ArgumentException($"--kind must be adapter or model (got '{other}')"),
                };
                var response = await client.ListAsync(new ListArtifactsRequest { Name = parse.GetValue(name) ?? "", Kind = filter, BaseFingerprint = fingerprint }, cancellationToken: cancellationToken);
                var rows = response.Artifacts.Select(a => new ArtifactRow(a.Manifest.Name, a.Version, a.Manifest.Kind.ToString().ToLowerInvariant(), [.. a.Tags], a.TotalBytes,
                    a.Manifest.Lineage?.BaseModel ?? "", a.Manifest.Lineage?.Method ?? "", DateTimeOffset.FromUnixTimeSeconds(a.CreatedUnix).UtcDateTime, a.Id)).ToList();
                if (parse.GetValue(json))
                {
                    CommandRunner.WriteJson(output, rows);
                    return;
                }

                if (rows.Count == 0)
                {
                    output.WriteLine("no artifacts");
                    return;
                }

                Tables.Write(output, null, ["name:version", "kind", "tags", "bytes", "base model", "method", "created (UTC)", "id"],
                    rows.Select(r => (IReadOnlyList<string>)[$"{r.Name}:{r.Version}", r.Kind, string.Join(",", r.Tags), r.Bytes.ToString("N0", System.Globalization.CultureInfo.InvariantCulture),
                        r.BaseModel, r.Method, r.Created.ToString("yyyy-MM-dd HH:mm", System.Globalization.CultureInfo.InvariantCulture), r.Id[..Math.Min(12, r.Id.Length)]]), "bytes");
            }
        }));
        return command;
    }

    /// <summary>One artifact of `adapters ls` (its --json element).</summary>
    private sealed record ArtifactRow(string Name, int Version, string Kind, string[] Tags, long Bytes, string BaseModel, string Method, DateTime Created, string Id);

    private static Command Tag()
    {
        var reference = new Argument<string>("ref") { Description = "name:VERSION, name@TAG or id" };
        var tag = new Argument<string>("tag") { Description = "tag to point at it (e.g. prod)" };
        var (registry, token, trust) = (Registry(), MeshCliOptions.Token("the registry"), MeshCliOptions.Trust("the registry"));
        var command = new Command("tag", "Point a tag at a version") { reference, tag, registry, token, trust };
        command.SetAction(async (parse, cancellationToken) => await Guard(parse, async output =>
        {
            var (client, channel) = Open(parse, registry, trust, token);
            using (channel)
            {
                var artifact = await client.TagAsync(new TagRequest { Ref = parse.GetValue(reference)!, Tag = parse.GetValue(tag)! }, MeshCliOptions.Headers(parse, token), cancellationToken: cancellationToken);
                output.WriteLine($"{artifact.Manifest.Name}:{artifact.Version} tags: {string.Join(", ", artifact.Tags)}");
            }
        }));
        return command;
    }

    private static Command Remove()
    {
        var reference = new Argument<string>("ref") { Description = "name:VERSION, name@TAG or id" };
        var (registry, token, trust) = (Registry(), MeshCliOptions.Token("the registry"), MeshCliOptions.Trust("the registry"));
        var command = new Command("rm", "Remove a version (its tags go with it)") { reference, registry, token, trust };
        command.SetAction(async (parse, cancellationToken) => await Guard(parse, async output =>
        {
            var (client, channel) = Open(parse, registry, trust, token);
            using (channel)
            {
                var response = await client.DeleteAsync(new DeleteArtifactRequest { Ref = parse.GetValue(reference)! }, MeshCliOptions.Headers(parse, token), cancellationToken: cancellationToken);
                output.WriteLine($"removed {response.Id}");
            }
        }));
        return command;
    }

    /// <summary>Registry refusals and unreachable registries as one-line errors.</summary>
    private static async Task<int> Guard(ParseResult parse, Func<TextWriter, Task> body)
    {
        var error = parse.InvocationConfiguration.Error;
        try
        {
            await body(parse.InvocationConfiguration.Output);
            return 0;
        }
        catch (RpcException e)
        {
            error.WriteLine(e.StatusCode == StatusCode.Unavailable
                ? $"error: the registry at {parse.GetValue<string>("--registry")} is not reachable (start it with `distill up`): {e.Status.Detail}"
                : $"error: {e.StatusCode}: {e.Status.Detail}");
            return 1;
        }
        catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException or Modeling.Adapters.AdapterFormatException)
        {
            error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
