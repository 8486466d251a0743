using System.Security.Cryptography;
using Distill.Mesh.Contracts.Common.V1;
using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Clients.Registry;
using Distill.Mesh.Registry.Storage;
using Distill.Mesh.Testing;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using TorchSharp;

namespace Distill.Mesh.Registry.Tests;

public class RegistryServiceTests
{
    /// <summary>A tiny base model folder and a PEFT adapter for it with random B (so it changes outputs).</summary>
    private static (string Base, string Adapter) BaseAndAdapter(TempFolder temp, long seed = 1, int rank = 4)
    {
        var baseFolder = temp.Combine("base");
        var adapterFolder = temp.Combine($"adapter-{seed}-{rank}");
        using var model = TinyModels.Create("llama", seed: 3);
        if (!Directory.Exists(baseFolder))
            model.SavePretrained(baseFolder);
        var config = LoraConfig.For(rank, 2 * rank, "q_proj", "v_proj");
        LoraAdapter.Attach(model, config, seed);
        using (torch.no_grad())
        {
            using var generator = new torch.Generator((ulong)seed);
            foreach (var (_, projection) in LoraAdapter.Adapted(model))
                projection.Lora!.B.weight!.normal_(0, 0.05, generator);
        }

        LoraAdapter.Save(model, config, adapterFolder);
        return (baseFolder, adapterFolder);
    }

    private static Task<Artifact> Push(RegistryHost host, string folder, string name, string baseModel = "", Metadata? headers = null) =>
        new RegistryClient(host.Client, headers).PushAsync(folder, RegistryClient.ManifestOf(folder, name, new Lineage { BaseModel = baseModel, Method = "kd" }));

    [Fact]
    public async Task PushPullRoundTrip_VersionsTagsAndDelete()
    {
        await using var host = await RegistryHost.StartAsync();
        var (baseFolder, adapter) = BaseAndAdapter(host.Folder);
        var model = await Push(host, baseFolder, "tiny-base");
        Assert.Equal(ArtifactKind.Model, model.Manifest.Kind);

        var v1 = await Push(host, adapter, "tiny-lora", baseModel: "tiny-base");
        Assert.Equal((1, ArtifactKind.Adapter), (v1.Version, v1.Manifest.Kind));
        Assert.Equal(["latest"], v1.Tags);
        // The same content again: the same artifact, no new version.
        Assert.Equal(v1.Id, (await Push(host, adapter, "tiny-lora", baseModel: "tiny-base")).Id);

        var (_, other) = BaseAndAdapter(host.Folder, seed: 2);
        var v2 = await Push(host, other, "tiny-lora", baseModel: baseFolder);
        Assert.Equal(2, v2.Version);
        Assert.Equal(v2.Id, (await host.Client.GetAsync(new GetArtifactRequest { Ref = "tiny-lora" })).Id);
        Assert.Equal(v1.Id, (await host.Client.GetAsync(new GetArtifactRequest { Ref = "tiny-lora:1" })).Id);
        await host.Client.TagAsync(new TagRequest { Ref = "tiny-lora:1", Tag = "prod" });
        Assert.Equal(v1.Id, (await host.Client.GetAsync(new GetArtifactRequest { Ref = "tiny-lora@prod" })).Id);

        // Pull writes a folder our loader (and PEFT) takes as is; every byte as pushed.
        var pulled = host.Folder.Combine("pulled");
        await new RegistryClient(host.Client).PullAsync("tiny-lora@prod", pulled);
        foreach (var file in Directory.GetFiles(adapter))
            Assert.Equal(File.ReadAllBytes(file), File.ReadAllBytes(Path.Combine(pulled, Path.GetFileName(file))));
        using (var student = CausalLanguageModel.FromPretrained(baseFolder))
            Assert.Equal(4, LoraAdapter.Load(student, pulled).R);

        var listed = (await host.Client.ListAsync(new ListArtifactsRequest { Name = "tiny-lora" })).Artifacts;
        Assert.Equal([2, 1], listed.Select(a => a.Version));
        Assert.Equal(["latest"], listed[0].Tags);
        Assert.Equal(["prod"], listed[1].Tags);

        // Delete v2: the name falls back to v1; blobs only v2 used are gone, shared ones stay.
        var v2Weights = v2.Manifest.Files.Single(f => f.Path == LoraAdapter.WeightsFileName).Sha256;
        await host.Client.DeleteAsync(new DeleteArtifactRequest { Ref = "tiny-lora:2" });
        Assert.Equal(v1.Id, (await host.Client.GetAsync(new GetArtifactRequest { Ref = "tiny-lora" })).Id);
        Assert.False(File.Exists(Path.Combine(host.Root, "blobs", v2Weights[..2], v2Weights)));
        var error = await Assert.ThrowsAsync<RpcException>(async () => await host.Client.GetAsync(new GetArtifactRequest { Ref = "tiny-lora:2" }));
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
    }

    [Fact]
    public async Task BadAdapters_AreRejectedNamingTheOffendingKeys_AndLeaveNothing()
    {
        await using var host = await RegistryHost.StartAsync();
        var (baseFolder, adapter) = BaseAndAdapter(host.Folder);

        // A (r = 4) saved under a config that says r = 8: every factor has the wrong shape.
        var wrongRank = host.Folder.Combine("wrong-rank");
        Directory.CreateDirectory(wrongRank);
        File.Copy(Path.Combine(adapter, LoraAdapter.WeightsFileName), Path.Combine(wrongRank, LoraAdapter.WeightsFileName));
        var config = LoraAdapter.ReadConfig(adapter);
        config.R = 8;
        LoraAdapter.WriteConfig(config, wrongRank);
        var rejected = await Assert.ThrowsAsync<RpcException>(() => Push(host, wrongRank, "bad", baseFolder));
        Assert.Equal(StatusCode.InvalidArgument, rejected.StatusCode);
        Assert.Contains("'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has shape [4, 64], expected [8, 64]", rejected.Status.Detail);

        // The public scripts' key layout (…q_proj.weight.lora_A.weight) names no module.
        var misnamed = host.Folder.Combine("misnamed");
        Directory.CreateDirectory(misnamed);
        using (var file = Modeling.Checkpoints.SafetensorsFile.Open(Path.Combine(adapter, LoraAdapter.WeightsFileName)))
        {
            var renamed = file.Tensors.Select(t => KeyValuePair.Create(t.Name.Replace("q_proj.lora_", "q_proj.weight.lora_"), file.ReadTensor(t.Name))).ToList();
            Modeling.Checkpoints.SafetensorsWriter.Write(Path.Combine(misnamed, LoraAdapter.WeightsFileName), renamed);
        }

        LoraAdapter.WriteConfig(LoraAdapter.ReadConfig(adapter), misnamed);
        rejected = await Assert.ThrowsAsync<RpcException>(() => Push(host, misnamed, "bad", baseFolder));
        Assert.Contains("'base_model.model.model.layers.0.self_attn.q_proj.weight.lora_A.weight': the base model has no linear module", rejected.Status.Detail);
        Assert.Contains("target_modules selects 2 module(s) with no factors", rejected.Status.Detail);

        // No base model, or one the registry cannot find.
        rejected = await Assert.ThrowsAsync<RpcException>(() => Push(host, adapter, "bad", ""));
        Assert.Contains("must name its base model", rejected.Status.Detail);
        rejected = await Assert.ThrowsAsync<RpcException>(() => Push(host, adapter, "bad", "no-such-model"));
        Assert.Equal(StatusCode.FailedPrecondition, rejected.StatusCode);

        Assert.Empty((await host.Client.ListAsync(new ListArtifactsRequest())).Artifacts);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(host.Root, "uploads")));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(host.Root, "blobs"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task WrongHashesSizesPathsNamesAndLimits_AreRefused()
    {
        await using var host = await RegistryHost.StartAsync(new Dictionary<string, string?> { ["Registry:MaxArtifactBytes"] = "100000" });
        var (baseFolder, adapter) = BaseAndAdapter(host.Folder);
        var manifest = RegistryClient.ManifestOf(adapter, "tiny-lora", new Lineage { BaseModel = baseFolder });

        async Task<RpcException> Refused(Manifest m, string? folder = null) =>
            await Assert.ThrowsAsync<RpcException>(() => new RegistryClient(host.Client).PushAsync(folder ?? adapter, m));

        // The manifest alone: what the registry refuses before reading any file.
        async Task<RpcException> RefusedManifest(Manifest m) => await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = host.Client.Push();
            await call.RequestStream.WriteAsync(new PushRequest { Manifest = m });
            await call.RequestStream.CompleteAsync();
            await call.ResponseAsync;
        });

        var wrongHash = manifest.Clone();
        wrongHash.Files[0].Sha256 = new string('0', 64);
        var e = await Refused(wrongHash);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains($"'{wrongHash.Files[0].Path}' has SHA-256", e.Status.Detail);

        var traversal = manifest.Clone();
        traversal.Files[0].Path = "../../etc/passwd";
        e = await RefusedManifest(traversal);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("invalid file path '../../etc/passwd'", e.Status.Detail);
        var absolute = manifest.Clone();
        absolute.Files[0].Path = "/tmp/x";
        Assert.Equal(StatusCode.InvalidArgument, (await RefusedManifest(absolute)).StatusCode);

        var badName = manifest.Clone();
        badName.Name = "../escape";
        Assert.Contains("invalid artifact name", (await RefusedManifest(badName)).Status.Detail);
        var badTag = await Assert.ThrowsAsync<RpcException>(async () => await host.Client.TagAsync(new TagRequest { Ref = "x:1", Tag = "a/../b" }));
        Assert.Contains("invalid tag", badTag.Status.Detail);
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(async () => await host.Client.GetAsync(new GetArtifactRequest { Ref = "a/../../b" }))).StatusCode);

        // Over the size limit: refused from the manifest, before any byte is sent.
        var model = RegistryClient.ManifestOf(baseFolder, "too-big");
        e = await RefusedManifest(model);
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Contains("at most 100,000", e.Status.Detail);

        // A file longer than declared.
        var shorter = manifest.Clone();
        shorter.Files[1].Size -= 10;
        Assert.Contains("longer than", (await Refused(shorter)).Status.Detail);

        Assert.Empty((await host.Client.ListAsync(new ListArtifactsRequest())).Artifacts);
    }

    [Fact]
    public async Task MalformedModels_AreRefused()
    {
        await using var host = await RegistryHost.StartAsync();
        var (baseFolder, _) = BaseAndAdapter(host.Folder);
        var broken = host.Folder.Combine("broken");
        Directory.CreateDirectory(broken);
        File.Copy(Path.Combine(baseFolder, "config.json"), Path.Combine(broken, "config.json"));
        var weights = File.ReadAllBytes(Path.Combine(baseFolder, "model.safetensors"));
        File.WriteAllBytes(Path.Combine(broken, "model.safetensors"), weights[..(weights.Length / 2)]);

        var error = await Assert.ThrowsAsync<RpcException>(() => Push(host, broken, "broken"));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("the model's weights are not readable", error.Status.Detail);

        File.Copy(Path.Combine(baseFolder, "model.safetensors"), Path.Combine(broken, "model.safetensors"), overwrite: true);
        File.WriteAllText(Path.Combine(broken, "config.json"), "{ not json");
        error = await Assert.ThrowsAsync<RpcException>(() => Push(host, broken, "broken"));
        Assert.Contains("config.json is not valid JSON", error.Status.Detail);
        Assert.Empty((await host.Client.ListAsync(new ListArtifactsRequest())).Artifacts);
    }

    [Fact]
    public async Task AnAbortedPush_LeavesNoVersion_AndACrashedOneIsSweptAtStart()
    {
        var temp = new TempFolder();
        await using (var host = await RegistryHost.StartAsync(folder: temp))
        {
            var (baseFolder, _) = BaseAndAdapter(host.Folder);
            var manifest = RegistryClient.ManifestOf(baseFolder, "tiny-base");
            using var abort = new CancellationTokenSource();
            using var call = host.Client.Push(cancellationToken: abort.Token);
            await call.RequestStream.WriteAsync(new PushRequest { Manifest = manifest });
            var bytes = File.ReadAllBytes(Path.Combine(baseFolder, manifest.Files[0].Path));
            await call.RequestStream.WriteAsync(new PushRequest { Chunk = new FileChunk { FileIndex = 0, Chunk = new Chunk { Data = ByteString.CopyFrom(bytes, 0, bytes.Length / 2) } } });
            abort.Cancel();
            await Assert.ThrowsAnyAsync<Exception>(async () => await call.ResponseAsync);

            Assert.Empty((await host.Client.ListAsync(new ListArtifactsRequest())).Artifacts);
            await WaitUntil(() => !Directory.EnumerateFileSystemEntries(Path.Combine(host.Root, "uploads")).Any());
        }

        // A process killed mid-push leaves its upload folder: invisible, and removed at the next start.
        var root = Path.Combine(temp.Path, "registry");
        var stale = Path.Combine(root, "uploads", "deadbeef", "tree");
        Directory.CreateDirectory(stale);
        File.WriteAllBytes(Path.Combine(stale, "model.safetensors"), new byte[1000]);
        var store = new ArtifactStore(new RegistryOptions { Root = root });
        Assert.Empty(store.List());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(root, "uploads")));
        temp.Dispose();
    }

    [Fact]
    public async Task BlobsOfACommitKilledBeforeItsTransaction_AreSweptAtStart_AndStoredVersionsKeepTheirs()
    {
        using var temp = new TempFolder();
        Artifact stored;
        await using (var host = await RegistryHost.StartAsync(folder: temp))
        {
            var (baseFolder, _) = BaseAndAdapter(host.Folder);
            stored = await Push(host, baseFolder, "tiny-base");
        }

        // What a commit killed between moving its blobs into place and its transaction leaves.
        var root = Path.Combine(temp.Path, "registry");
        var orphan = new string('a', 64);
        Directory.CreateDirectory(Path.Combine(root, "blobs", "aa"));
        File.WriteAllBytes(Path.Combine(root, "blobs", "aa", orphan), new byte[4096]);

        var store = new ArtifactStore(new RegistryOptions { Root = root });

        Assert.False(File.Exists(Path.Combine(root, "blobs", "aa", orphan)));
        Assert.All(stored.Manifest.Files, f => Assert.True(File.Exists(store.BlobPath(f.Sha256)), f.Path));
        Assert.Equal(stored.Id, Assert.Single(store.List()).Id);
        Assert.Equal(0, store.SweepOrphans());
    }

    [Fact]
    public async Task WithBaseModelRoots_AFolderElsewhere_GetsTheAnswerOfAMissingOne_AndOneUnderARootIsRead()
    {
        using var temp = new TempFolder();
        var roots = temp.Combine("models");
        await using var host = await RegistryHost.StartAsync(new() { ["Registry:BaseModelRoots:0"] = roots }, folder: temp);
        var (baseFolder, adapter) = BaseAndAdapter(host.Folder);

        var outside = await Assert.ThrowsAsync<RpcException>(() => Push(host, adapter, "probe", baseFolder));
        var missing = await Assert.ThrowsAsync<RpcException>(() => Push(host, adapter, "probe", Path.Combine(roots, "no-such-model")));
        var relative = await Assert.ThrowsAsync<RpcException>(() => Push(host, adapter, "probe", "../models/x"));
        Directory.CreateDirectory(roots);
        // A link under the root that leads out of it, used as a middle component.
        Directory.CreateSymbolicLink(Path.Combine(roots, "escape"), Path.GetDirectoryName(baseFolder)!);
        var escaped = await Assert.ThrowsAsync<RpcException>(() => Push(host, adapter, "probe", Path.Combine(roots, "escape", Path.GetFileName(baseFolder))));
        Directory.Move(baseFolder, Path.Combine(roots, "base"));
        var accepted = await Push(host, adapter, "under-root", Path.Combine(roots, "base"));

        Assert.Equal(StatusCode.FailedPrecondition, outside.StatusCode);
        Assert.Equal(outside.Status.Detail.Replace(baseFolder, "X"), missing.Status.Detail.Replace(Path.Combine(roots, "no-such-model"), "X"));
        Assert.Contains("nor a folder under Registry:BaseModelRoots", outside.Status.Detail);
        Assert.Equal(StatusCode.FailedPrecondition, relative.StatusCode);
        Assert.Contains("nor a folder under Registry:BaseModelRoots", escaped.Status.Detail);
        Assert.Equal(ArtifactKind.Adapter, accepted.Manifest.Kind);
    }

    [Fact]
    public async Task Lineage_IsStoredWithoutThePushersPaths()
    {
        await using var host = await RegistryHost.StartAsync();
        var (baseFolder, adapter) = BaseAndAdapter(host.Folder);
        var manifest = RegistryClient.ManifestOf(adapter, "redacted", new Lineage
        {
            BaseModel = baseFolder,
            Method = "kd",
            Teachers = { "/home/alice/models/teacher-8b", "registry-teacher:3" },
            ConfigJson = """{"student": {"model": "/home/alice/models/student"}, "dataset": {"path": "C:\\data\\chats.jsonl"}, "publish": {"registry": "http://10.0.0.5:7103"}, "steps": 5}""",
        });

        var stored = await new RegistryClient(host.Client).PushAsync(adapter, manifest);
        var listed = Assert.Single((await host.Client.ListAsync(new ListArtifactsRequest())).Artifacts);

        foreach (var lineage in new[] { stored.Manifest.Lineage, listed.Manifest.Lineage })
        {
            Assert.Equal($"…/{Path.GetFileName(baseFolder)}", lineage.BaseModel);
            Assert.Equal(["…/teacher-8b", "registry-teacher:3"], lineage.Teachers);
            var config = System.Text.Json.Nodes.JsonNode.Parse(lineage.ConfigJson)!;
            Assert.Equal("…/student", (string?)config["student"]!["model"]);
            Assert.Equal("…/chats.jsonl", (string?)config["dataset"]!["path"]);
            Assert.Equal("http://10.0.0.5:7103", (string?)config["publish"]!["registry"]);
            Assert.Equal(5, (int)config["steps"]!);
        }
    }

    [Fact]
    public async Task ConcurrentPushesOfOneName_GetDistinctVersions()
    {
        await using var host = await RegistryHost.StartAsync();
        var (baseFolder, _) = BaseAndAdapter(host.Folder);
        var adapters = Enumerable.Range(10, 6).Select(seed => BaseAndAdapter(host.Folder, seed).Adapter).ToList();

        var pushed = await Task.WhenAll(adapters.Select(a => Push(host, a, "busy", baseFolder)));

        Assert.Equal([1, 2, 3, 4, 5, 6], pushed.Select(a => a.Version).Order());
        Assert.Equal(6, pushed.Select(a => a.Id).Distinct().Count());
        Assert.Equal(6, (await host.Client.ListAsync(new ListArtifactsRequest { Name = "busy" })).Artifacts.Count);
    }

    [Fact]
    public async Task ACorruptedBlob_IsDetectedOnPull_AndNothingIsWritten()
    {
        await using var host = await RegistryHost.StartAsync();
        var (baseFolder, adapter) = BaseAndAdapter(host.Folder);
        var artifact = await Push(host, adapter, "tiny-lora", baseFolder);
        var weights = artifact.Manifest.Files.Single(f => f.Path == LoraAdapter.WeightsFileName).Sha256;
        var blob = Path.Combine(host.Root, "blobs", weights[..2], weights);
        var bytes = File.ReadAllBytes(blob);
        bytes[^3] ^= 0x40;
        File.WriteAllBytes(blob, bytes);

        var error = await Assert.ThrowsAsync<RpcException>(() => new RegistryClient(host.Client).PullAsync("tiny-lora", host.Folder.Combine("out")));

        Assert.Equal(StatusCode.DataLoss, error.StatusCode);
        Assert.Contains("'adapter_model.safetensors' is damaged", error.Status.Detail);
        Assert.False(Directory.Exists(host.Folder.Combine("out")));
        Assert.Empty(Directory.EnumerateDirectories(host.Folder.Path, ".out.pull-*"));
    }

    [Fact]
    public async Task PullResumesFromAFileAndOffset()
    {
        await using var host = await RegistryHost.StartAsync();
        var (baseFolder, _) = BaseAndAdapter(host.Folder);
        var artifact = await Push(host, baseFolder, "tiny-base");
        var index = artifact.Manifest.Files.ToList().FindIndex(f => f.Path == "model.safetensors");
        var expected = File.ReadAllBytes(Path.Combine(baseFolder, "model.safetensors"));

        using var call = host.Client.Pull(new PullRequest { Ref = "tiny-base:1", FileIndex = index, Offset = 1000 });
        var received = new MemoryStream();
        var first = true;
        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
            var item = call.ResponseStream.Current;
            if (item.ItemCase != PullResponse.ItemOneofCase.Chunk || item.Chunk.FileIndex != index)
                continue;
            if (first)
                Assert.Equal(1000, item.Chunk.Chunk.Offset);
            first = false;
            item.Chunk.Chunk.Data.WriteTo(received);
        }

        Assert.Equal(expected[1000..], received.ToArray());
        var outOfRange = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var bad = host.Client.Pull(new PullRequest { Ref = "tiny-base:1", FileIndex = index, Offset = expected.Length + 1 });
            await bad.ResponseStream.MoveNext(CancellationToken.None);
        });
        Assert.Equal(StatusCode.OutOfRange, outOfRange.StatusCode);
    }

    [Fact]
    public async Task APullBrokenMidStream_ResumesWhereItStopped()
    {
        var breaker = new BreakFirstPull(chunksBeforeBreak: 2);
        await using var host = await RegistryHost.StartAsync(configure: b =>
        {
            b.Services.AddSingleton(breaker);
            b.Services.Configure<global::Grpc.AspNetCore.Server.GrpcServiceOptions>(o => o.Interceptors.Add<BreakFirstPull>());
        });
        // A model whose weights span several 1 MiB chunks.
        var folder = host.Folder.Combine("big");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), "{}");
        using (var generator = new torch.Generator(3))
        using (var weights = torch.randn(3 << 18, generator: generator))
            Modeling.Checkpoints.SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), [KeyValuePair.Create("w", weights)]);
        await Push(host, folder, "big");

        await new RegistryClient(host.Client).PullAsync("big", host.Folder.Combine("pulled"));

        // The second call picked up after the bytes already written, not from the start.
        Assert.Equal(2, breaker.Requests.Count);
        var resumed = breaker.Requests[1];
        Assert.True(resumed.FileIndex > 0 || resumed.Offset > 0, $"resumed at file {resumed.FileIndex} offset {resumed.Offset}; requests: {string.Join(" / ", breaker.Requests)}");
        foreach (var name in new[] { "config.json", "model.safetensors" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(folder, name)), File.ReadAllBytes(host.Folder.Combine("pulled", name)));
    }

    /// <summary>Ends the first Pull with UNAVAILABLE after a few messages, as a dropped connection would.</summary>
    private sealed class BreakFirstPull(int chunksBeforeBreak) : global::Grpc.Core.Interceptors.Interceptor
    {
        private int _armed = 1;

        public List<PullRequest> Requests { get; } = [];

        public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
            TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
        {
            if (request is PullRequest pull)
            {
                lock (Requests)
                    Requests.Add(pull.Clone());
            }

            var writer = request is PullRequest && Interlocked.Exchange(ref _armed, 0) == 1 ? new Breaking<TResponse>(responseStream, chunksBeforeBreak + 1) : responseStream;
            await continuation(request, writer, context);
        }

        private sealed class Breaking<T>(IServerStreamWriter<T> inner, int allowed) : IServerStreamWriter<T>
        {
            private int _written;

            public WriteOptions? WriteOptions
            {
                get => inner.WriteOptions;
                set => inner.WriteOptions = value;
            }

            public Task WriteAsync(T message) => WriteAsync(message, CancellationToken.None);

            public async Task WriteAsync(T message, CancellationToken cancellationToken)
            {
                if (++_written <= allowed)
                {
                    await inner.WriteAsync(message, cancellationToken);
                    return;
                }

                // Give the client time to read what was sent (a reset stream drops unread messages), then drop.
                await Task.Delay(500);
                throw new RpcException(new Status(StatusCode.Unavailable, "connection dropped (injected)"));
            }
        }
    }

    [Fact]
    public async Task WithATokenConfigured_MutatingCallsNeedIt()
    {
        await using var host = await RegistryHost.StartAsync(new Dictionary<string, string?> { ["Mesh:AuthToken"] = "s3cret" });
        var (baseFolder, _) = BaseAndAdapter(host.Folder);

        var error = await Assert.ThrowsAsync<RpcException>(() => Push(host, baseFolder, "tiny-base"));
        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Empty((await host.Client.ListAsync(new ListArtifactsRequest())).Artifacts); // reads stay open

        var pushed = await Push(host, baseFolder, "tiny-base", headers: new Metadata { { "authorization", "Bearer s3cret" } });
        Assert.Equal(1, pushed.Version);
        error = await Assert.ThrowsAsync<RpcException>(async () => await host.Client.DeleteAsync(new DeleteArtifactRequest { Ref = "tiny-base" }));
        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
    }

    [Fact]
    public async Task APushRefusedMidStream_SaysWhyNotCancelled()
    {
        // The server refuses before reading the stream; the client is still writing 32 MiB, and
        // its failed write must give way to the server's answer.
        await using var host = await RegistryHost.StartAsync(new Dictionary<string, string?> { ["Mesh:AuthToken"] = "s3cret" });
        var (baseFolder, _) = BaseAndAdapter(host.Folder);
        File.WriteAllBytes(Path.Combine(baseFolder, "extra.bin"), new byte[32 << 20]);
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var error = await Assert.ThrowsAsync<RpcException>(() => Push(host, baseFolder, "tiny-base"));
            Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
            Assert.Contains("bearer token", error.Status.Detail);
        }
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (var i = 0; i < 100 && !condition(); i++)
            await Task.Delay(50);
        Assert.True(condition());
    }
}
