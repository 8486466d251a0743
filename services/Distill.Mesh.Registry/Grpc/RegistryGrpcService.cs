using System.Security.Cryptography;
using Distill.Mesh.Contracts.Common.V1;
using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.Registry.Storage;
using Google.Protobuf;
using Grpc.Core;

namespace Distill.Mesh.Registry.Grpc;

/// <summary>The registry over gRPC: pushes stream into an upload that becomes visible on commit; pulls re-hash what they send.</summary>
public sealed class RegistryGrpcService(ArtifactStore store, ILogger<RegistryGrpcService> logger) : RegistryService.RegistryServiceBase
{
    public const string PushMethod = "/distill.registry.v1.RegistryService/Push";
    public const string TagMethod = "/distill.registry.v1.RegistryService/Tag";
    public const string DeleteMethod = "/distill.registry.v1.RegistryService/Delete";

    /// <summary>Bytes per streamed chunk (well under the 4 MiB message limit).</summary>
    public const int ChunkBytes = 1 << 20;

    public override Task<Artifact> Push(IAsyncStreamReader<PushRequest> requestStream, ServerCallContext context) =>
        RegistryMetrics.Measure(RegistryMetrics.Push, moved => PushAsync(requestStream, context, moved));

    public override Task Pull(PullRequest request, IServerStreamWriter<PullResponse> responseStream, ServerCallContext context) =>
        RegistryMetrics.Measure(RegistryMetrics.Pull, async moved =>
        {
            await PullAsync(request, responseStream, context, moved);
            return true;
        });

    private async Task<Artifact> PushAsync(IAsyncStreamReader<PushRequest> requestStream, ServerCallContext context, Action<long> moved)
    {
        if (!await requestStream.MoveNext(context.CancellationToken) || requestStream.Current.ItemCase != PushRequest.ItemOneofCase.Manifest)
            throw new RpcException(new Status(StatusCode.InvalidArgument, "the first Push message must carry the manifest"));
        using var upload = Guard(() => store.BeginPush(requestStream.Current.Manifest));
        while (await requestStream.MoveNext(context.CancellationToken))
        {
            var item = requestStream.Current;
            if (item.ItemCase != PushRequest.ItemOneofCase.Chunk)
                throw new RpcException(new Status(StatusCode.InvalidArgument, "only file chunks may follow the manifest"));
            Guard(() => upload.Write(item.Chunk.FileIndex, item.Chunk.Chunk.Offset, item.Chunk.Chunk.Data.Span));
            moved(item.Chunk.Chunk.Data.Length);
        }

        var artifact = Guard(() => store.Commit(upload));
        logger.LogInformation("pushed {Name}:{Version} ({Id}, {Bytes} bytes)", artifact.Manifest.Name, artifact.Version, artifact.Id, artifact.TotalBytes);
        return artifact;
    }

    private async Task PullAsync(PullRequest request, IServerStreamWriter<PullResponse> responseStream, ServerCallContext context, Action<long> moved)
    {
        var artifact = store.Get(request.Ref);
        var files = artifact.Manifest.Files;
        if (request.FileIndex < 0 || request.FileIndex > files.Count || request.Offset < 0
            || (request.FileIndex < files.Count && request.Offset > files[request.FileIndex].Size) || (request.FileIndex == files.Count && request.Offset != 0))
            throw new RpcException(new Status(StatusCode.OutOfRange, $"resume point file {request.FileIndex} offset {request.Offset} is outside the artifact"));
        await responseStream.WriteAsync(new PullResponse { Artifact = artifact }, context.CancellationToken);
        var buffer = new byte[ChunkBytes];
        for (var i = request.FileIndex; i < files.Count; i++)
        {
            var entry = files[i];
            var start = i == request.FileIndex ? request.Offset : 0;
            FileStream stream;
            try
            {
                stream = new FileStream(store.BlobPath(entry.Sha256), FileMode.Open, FileAccess.Read, FileShare.Read, ChunkBytes);
            }
            catch (FileNotFoundException)
            {
                throw new RpcException(new Status(StatusCode.DataLoss, $"the blob of '{entry.Path}' ({entry.Sha256}) is missing from the registry's storage"));
            }

            using (stream)
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                long position = 0;
                int read;
                while ((read = await stream.ReadAsync(buffer, context.CancellationToken)) > 0)
                {
                    // The skipped prefix of a resumed file is hashed too, so the whole file is checked.
                    hash.AppendData(buffer, 0, read);
                    var from = (int)Math.Clamp(start - position, 0, read);
                    if (from < read)
                    {
                        var chunk = new FileChunk { FileIndex = i, Chunk = new Chunk { Offset = position + from, Data = ByteString.CopyFrom(buffer, from, read - from) } };
                        await responseStream.WriteAsync(new PullResponse { Chunk = chunk }, context.CancellationToken);
                        moved(read - from);
                    }

                    position += read;
                }

                var sha = Convert.ToHexStringLower(hash.GetHashAndReset());
                if (position != entry.Size || sha != entry.Sha256)
                {
                    logger.LogError("blob {Sha} of {Artifact} is damaged ({Size} bytes, sha256 {Actual})", entry.Sha256, artifact.Id, position, sha);
                    throw new RpcException(new Status(StatusCode.DataLoss, $"the stored '{entry.Path}' is damaged: {position} bytes with SHA-256 {sha}, expected {entry.Size} bytes with {entry.Sha256}"));
                }
            }
        }
    }

    public override Task<ListArtifactsResponse> List(ListArtifactsRequest request, ServerCallContext context) =>
        Task.FromResult(new ListArtifactsResponse { Artifacts = { store.List(request.Name, request.Kind, request.BaseFingerprint) } });

    public override Task<Artifact> Get(GetArtifactRequest request, ServerCallContext context) => Task.FromResult(store.Get(request.Ref));

    public override Task<Artifact> Tag(TagRequest request, ServerCallContext context) => Task.FromResult(store.Tag(request.Ref, request.Tag));

    public override Task<DeleteArtifactResponse> Delete(DeleteArtifactRequest request, ServerCallContext context) =>
        Task.FromResult(new DeleteArtifactResponse { Id = store.Delete(request.Ref) });

    /// <summary>The registry's own refusals with their status codes; everything else goes to the mesh's exception mapping.</summary>
    private static void Guard(Action body) => Guard(() =>
    {
        body();
        return true;
    });

    /// <inheritdoc cref="Guard(Action)"/>
    private static T Guard<T>(Func<T> body)
    {
        try
        {
            return body();
        }
        catch (ArtifactTooLargeException e)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, e.Message));
        }
        catch (ArtifactRejectedException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
    }
}
