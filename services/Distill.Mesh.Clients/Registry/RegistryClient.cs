using System.Security.Cryptography;
using Distill.Mesh.Contracts.Common.V1;
using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Specs.Naming;
using Google.Protobuf;
using Grpc.Core;

namespace Distill.Mesh.Clients.Registry;

/// <summary>
/// Pushes folders to the registry and pulls them back into folders (written to a temporary
/// sibling, each file checked against its SHA-256, then renamed into place); a broken pull
/// resumes where it stopped.
/// </summary>
public sealed class RegistryClient(RegistryService.RegistryServiceClient client, Metadata? headers = null)
{
    /// <summary>Bytes per pushed chunk (well under the 4 MiB message default).</summary>
    public const int ChunkBytes = 1 << 20;

    /// <summary>
    /// The manifest of a folder: every regular file (hidden ones and our temporaries skipped),
    /// hashed. The kind is ADAPTER when adapter_config.json is there, MODEL for config.json.
    /// </summary>
    public static Manifest ManifestOf(string folder, string name, Lineage? lineage = null)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"'{folder}' does not exist");
        var kind = File.Exists(Path.Combine(folder, LoraAdapter.ConfigFileName)) ? ArtifactKind.Adapter
            : File.Exists(Path.Combine(folder, "config.json")) ? ArtifactKind.Model
            : throw new ArgumentException($"'{folder}' is neither a PEFT adapter (adapter_config.json) nor a model folder (config.json)");
        var manifest = new Manifest { Name = ArtifactNames.CheckName(name), Kind = kind, Lineage = lineage ?? new Lineage() };
        foreach (var path in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(folder, p).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(p => !p.Split('/').Any(s => s.StartsWith('.')))
            .Order(StringComparer.Ordinal))
        {
            var full = Path.Combine(folder, path);
            manifest.Files.Add(Pushed(folder, path) is { } bytes
                ? new FileEntry { Path = ArtifactNames.CheckPath(path), Size = bytes.Length, Sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)) }
                : new FileEntry { Path = ArtifactNames.CheckPath(path), Size = new FileInfo(full).Length, Sha256 = FileHash.Sha256(full) });
        }

        if (kind == ArtifactKind.Adapter && string.IsNullOrEmpty(manifest.Lineage.BaseModel))
            manifest.Lineage.BaseModel = LoraAdapter.ReadConfig(folder).BaseModelNameOrPath ?? "";
        return manifest;
    }

    /// <summary>
    /// The bytes pushed in place of a file, or null to push it as it is: an adapter_config.json
    /// whose base_model_name_or_path is an absolute path on this machine is pushed with the folder's
    /// name only (a path means nothing on the machine that pulls it, and it tells about this one).
    /// </summary>
    public static byte[]? Pushed(string folder, string path)
    {
        if (path != LoraAdapter.ConfigFileName)
            return null;
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(folder, path))) as System.Text.Json.Nodes.JsonObject;
        if (config?["base_model_name_or_path"] is not System.Text.Json.Nodes.JsonValue value || !value.TryGetValue<string>(out var baseModel) || !Path.IsPathRooted(baseModel))
            return null;
        config["base_model_name_or_path"] = Path.GetFileName(baseModel.TrimEnd('/', '\\'));
        return System.Text.Encoding.UTF8.GetBytes(config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Streams <paramref name="folder"/>'s files as <paramref name="manifest"/> lists them.</summary>
    public async Task<Artifact> PushAsync(string folder, Manifest manifest, Action<long>? onBytes = null, CancellationToken cancellationToken = default)
    {
        using var call = client.Push(headers, cancellationToken: cancellationToken);
        try
        {
            await WriteAsync(call.RequestStream, folder, manifest, onBytes, cancellationToken);
        }
        catch (Exception e) when (e is RpcException or IOException or InvalidOperationException && !cancellationToken.IsCancellationRequested)
        {
            // The server may answer before it has read the whole stream (a missing token, a refused
            // manifest); the write then fails with a reset stream, and the answer says why.
            if (await ServerAnswerAsync(call) is { StatusCode: not StatusCode.Cancelled } answer)
                throw answer;
            throw;
        }

        return await call;
    }

    private static async Task WriteAsync(IClientStreamWriter<PushRequest> requests, string folder, Manifest manifest, Action<long>? onBytes, CancellationToken cancellationToken)
    {
        await requests.WriteAsync(new PushRequest { Manifest = manifest }, cancellationToken);
        var buffer = new byte[ChunkBytes];
        long sent = 0;
        for (var i = 0; i < manifest.Files.Count; i++)
        {
            await using Stream stream = Pushed(folder, manifest.Files[i].Path) is { } bytes
                ? new MemoryStream(bytes, writable: false)
                : new FileStream(Path.Combine(folder, manifest.Files[i].Path), FileMode.Open, FileAccess.Read, FileShare.Read, buffer.Length);
            long offset = 0;
            int read;
            while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
            {
                var chunk = new FileChunk { FileIndex = i, Chunk = new Chunk { Offset = offset, Data = ByteString.CopyFrom(buffer, 0, read) } };
                await requests.WriteAsync(new PushRequest { Chunk = chunk }, cancellationToken);
                offset += read;
                sent += read;
                onBytes?.Invoke(sent);
            }
        }

        await requests.CompleteAsync();
    }

    /// <summary>The error the server ended a call with, or null when it gave none.</summary>
    private static async Task<RpcException?> ServerAnswerAsync(AsyncClientStreamingCall<PushRequest, Artifact> call)
    {
        try
        {
            await call.ResponseAsync;
            return null;
        }
        catch (RpcException answer)
        {
            return answer;
        }
    }

    /// <summary>
    /// Downloads an artifact into <paramref name="outFolder"/> (which must not exist or be empty).
    /// A stream that breaks is resumed from the last byte written, up to <paramref name="retries"/> times.
    /// </summary>
    public async Task<Artifact> PullAsync(string reference, string outFolder, Action<long>? onBytes = null, int retries = 3, CancellationToken cancellationToken = default)
    {
        var target = Path.GetFullPath(outFolder);
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
            throw new IOException($"'{outFolder}' exists and is not empty");
        var artifact = await client.GetAsync(new GetArtifactRequest { Ref = reference }, headers, cancellationToken: cancellationToken);
        var staging = Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.pull-{artifact.Id[..12]}");
        Directory.CreateDirectory(staging);
        try
        {
            await DownloadAsync(artifact, staging, onBytes, retries, cancellationToken);
        }
        catch
        {
            Directory.Delete(staging, recursive: true);
            throw;
        }

        if (Directory.Exists(target))
            Directory.Delete(target);
        Directory.Move(staging, target);
        return artifact;
    }

    private async Task DownloadAsync(Artifact artifact, string staging, Action<long>? onBytes, int retries, CancellationToken cancellationToken)
    {
        var files = artifact.Manifest.Files;
        var (index, offset, received) = (0, 0L, 0L);
        // The current file's hash so far, kept across a resumed call (the file is truncated to exactly what it has seen).
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var call = client.Pull(new PullRequest { Ref = artifact.Id, FileIndex = index, Offset = offset }, headers, cancellationToken: cancellationToken);
                FileStream? stream = null;
                try
                {
                    while (await call.ResponseStream.MoveNext(cancellationToken))
                    {
                        var item = call.ResponseStream.Current;
                        if (item.ItemCase != PullResponse.ItemOneofCase.Chunk)
                            continue;
                        var chunk = item.Chunk;
                        while (index < chunk.FileIndex)
                        {
                            // The previous file is complete (empty files get no chunks).
                            stream?.Dispose();
                            stream = null;
                            Finish(staging, files[index], hash);
                            (index, offset) = (index + 1, 0);
                        }

                        if (chunk.Chunk.Offset != offset)
                            throw new IOException($"pull of '{files[index].Path}': chunk at {chunk.Chunk.Offset}, expected {offset}");
                        stream ??= OpenAt(staging, files[index].Path, offset);
                        chunk.Chunk.Data.WriteTo(stream);
                        hash.AppendData(chunk.Chunk.Data.Span);
                        offset += chunk.Chunk.Data.Length;
                        received += chunk.Chunk.Data.Length;
                        onBytes?.Invoke(received);
                    }
                }
                finally
                {
                    stream?.Dispose();
                }

                for (; index < files.Count; (index, offset) = (index + 1, 0))
                    Finish(staging, files[index], hash);
                break;
            }
            catch (RpcException e) when (attempt < retries && e.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown or StatusCode.Aborted)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200 << attempt), cancellationToken);
            }
        }
    }

    private static FileStream OpenAt(string staging, string path, long offset)
    {
        var full = Path.Combine(staging, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var stream = new FileStream(full, FileMode.OpenOrCreate, FileAccess.Write, FileShare.None, 1 << 20);
        stream.SetLength(offset);
        stream.Position = offset;
        return stream;
    }

    /// <summary>
    /// A file is done: it must have its manifest size and SHA-256, hashed as it was written (a
    /// damaged transfer stops here). Empty files got no chunks and are created now.
    /// </summary>
    private static void Finish(string staging, FileEntry entry, IncrementalHash hash)
    {
        var full = Path.Combine(staging, entry.Path);
        if (!File.Exists(full))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllBytes(full, []);
        }

        var length = new FileInfo(full).Length;
        var sha = Convert.ToHexStringLower(hash.GetHashAndReset());
        if (length != entry.Size || sha != entry.Sha256)
            throw new IOException($"pulled '{entry.Path}' has {length} bytes with SHA-256 {sha}; the manifest says {entry.Size} bytes with {entry.Sha256}");
    }
}
