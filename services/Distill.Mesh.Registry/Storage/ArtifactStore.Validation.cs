using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Checkpoints;

namespace Distill.Mesh.Registry.Storage;

/// <summary>What a push must be before it becomes visible: a readable model, or an adapter that fits its base model.</summary>
public sealed partial class ArtifactStore
{
    /// <summary>A model folder: config.json is a JSON object and every safetensors header is sound.</summary>
    private static void ValidateModel(ArtifactUpload upload)
    {
        var config = Path.Combine(upload.Tree, "config.json");
        if (!File.Exists(config))
            throw new ArtifactRejectedException("a model needs config.json at its top level");
        try
        {
            if (System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(config)) is not System.Text.Json.Nodes.JsonObject)
                throw new ArtifactRejectedException("config.json is not a JSON object");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new ArtifactRejectedException($"config.json is not valid JSON: {e.Message}");
        }

        if (!upload.Manifest.Files.Any(f => f.Path.EndsWith(".safetensors", StringComparison.Ordinal)))
            throw new ArtifactRejectedException("a model needs its weights as safetensors (model.safetensors or shards with model.safetensors.index.json)");
        try
        {
            using var checkpoint = SafetensorsCheckpoint.Open(upload.Tree);
        }
        catch (Exception e) when (e is CheckpointFormatException or FileNotFoundException)
        {
            throw new ArtifactRejectedException($"the model's weights are not readable: {e.Message}");
        }
    }

    /// <summary>
    /// Checks an uploaded adapter against its base model: a MODEL artifact of this registry
    /// (by reference) or a model folder the registry can read.
    /// </summary>
    private string? ReadableBaseFolder(string path)
    {
        if (_options.BaseModelRoots.Count == 0)
            return Directory.Exists(path) ? path : null;
        if (!Path.IsPathFullyQualified(path))
            return null;
        // Every link of every component resolved first, so a link under a root cannot lead out of it.
        var resolved = Specs.Storage.RegularFile.Resolve(path);
        if (resolved is null || !Directory.Exists(resolved))
            return null;
        if (!_options.BaseModelRoots.Select(r => Path.TrimEndingDirectorySeparator(Specs.Storage.RegularFile.Resolve(r) ?? Path.GetFullPath(r)) + Path.DirectorySeparatorChar)
                .Any(root => (Path.TrimEndingDirectorySeparator(resolved) + Path.DirectorySeparatorChar).StartsWith(root, StringComparison.Ordinal)))
            return null;
        return resolved;
    }

    private void ValidateAdapter(ArtifactUpload upload)
    {
        var baseModel = upload.Manifest.Lineage.BaseModel;
        string folder;
        Artifact? stored = null;
        try
        {
            stored = Get(baseModel);
        }
        catch (Exception e) when (e is ArgumentException or KeyNotFoundException)
        {
        }

        if (stored is not null)
        {
            if (stored.Manifest.Kind != ArtifactKind.Model)
                throw new ArtifactRejectedException($"base model '{baseModel}' is a {stored.Manifest.Kind} artifact, not a model");
            folder = Path.Combine(upload.Folder, "base");
            LinkInto(stored, folder);
        }
        else if (ReadableBaseFolder(baseModel) is { } readable)
        {
            folder = readable;
        }
        else
        {
            throw new InvalidOperationException(_options.BaseModelRoots.Count == 0
                ? $"base model '{baseModel}' is neither a model in this registry nor a folder the registry can read"
                : $"base model '{baseModel}' is neither a model in this registry nor a folder under Registry:BaseModelRoots");
        }

        IReadOnlyList<string> problems;
        try
        {
            using var checkpoint = SafetensorsCheckpoint.Open(folder);
            problems = AdapterValidator.Check(upload.Tree, AdapterValidator.ShapesOf(checkpoint));
        }
        catch (Exception e) when (e is CheckpointFormatException or FileNotFoundException)
        {
            throw new InvalidOperationException($"base model '{baseModel}' cannot be read: {e.Message}", e);
        }

        if (problems.Count > 0)
            throw new ArtifactRejectedException($"adapter rejected against base model '{baseModel}': {string.Join("; ", problems.Take(20))}{(problems.Count > 20 ? $"; … ({problems.Count - 20} more)" : "")}");
    }
}
