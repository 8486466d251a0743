using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Testing;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Recipes;
using Distill.Mesh.Training.Teachers;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Distill.Mesh.Teacher.Tests;

public sealed class RemoteTeacherTests : IDisposable
{
    private readonly TempFolder _dir = new();

    /// <summary>Fails the first calls to Score as a restarting teacher would (UNAVAILABLE).</summary>
    private sealed class FailFirst(int failures) : Interceptor
    {
        private int _left = failures;

        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context, AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation)
        {
            if (Interlocked.Decrement(ref _left) >= 0)
                throw new RpcException(new Status(StatusCode.Unavailable, "teacher restarting"));
            return continuation(context);
        }
    }

    private static readonly RemoteTeacher.RetryPolicy FastRetry = new(FirstDelay: TimeSpan.FromMilliseconds(1));

    [Fact]
    public async Task Rows_EqualTheInProcessTeachersForAPaddedBatch()
    {
        await using var host = await TeacherHost.StartAsync();
        var remote = await RemoteTeacher.ConnectAsync(host.Channel.CreateCallInvoker(), FastRetry);
        using var batch = Batching.Collate([new TokenizedExample([256, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5]), new TokenizedExample([256, 9, 8], [0, 9, 8])], 0);
        var request = new SignalRequest(SignalFormat.TopK, 262, 1.0, 16);

        using var remoteRows = await remote.ScoreAsync(batch, request);
        using var localRows = host.Teacher.Score(batch, request);

        Assert.Equal(host.Teacher.Describe(), remote.Describe());
        Assert.Equal(10, remoteRows.Rows);
        foreach (var (start, count) in new[] { (0L, 5L), (5L, 2L) })
        {
            var a = (TopKTeacherSignal)localRows.Block(start, count);
            var b = (TopKTeacherSignal)remoteRows.Block(start, count);
            TensorAssert.Equal(a.Ids, b.Ids);
            TensorAssert.Close(a.LogProbs, b.LogProbs, atol: 1e-6);
        }
    }

    [Fact]
    public async Task Rows_EqualTheInProcessTeachersForAPackedBatch()
    {
        await using var host = await TeacherHost.StartAsync();
        var remote = await RemoteTeacher.ConnectAsync(host.Channel.CreateCallInvoker(), FastRetry);
        var packed = Packing.Pack([new TokenizedExample([256, 1, 2, 3], [0, 1, 2, 3]), new TokenizedExample([256, 9, 8, 7, 6], [0, 9, 8, 7, 6]),
            new TokenizedExample([256, 5, 4], [0, 5, 4]), new TokenizedExample([256, 70, 71, 72, 73, 74], [0, 70, 71, 72, 73, 74])], maxLength: 12);
        Assert.Equal(2, packed.Count);
        using var batch = Batching.Collate(packed, 0);
        Assert.NotNull(batch.DocumentIds);
        var request = new SignalRequest(SignalFormat.TopK, 262, 1.0, 16);

        using var remoteRows = await remote.ScoreAsync(batch, request);
        using var localRows = host.Teacher.Score(batch, request);

        // Every row a real token follows (the last real token of a row predicts padding) matches,
        // including the rows at document boundaries.
        var stride = batch.InputIds.shape[1] - 1;
        for (var b = 0; b < packed.Count; b++)
        {
            var a = (TopKTeacherSignal)localRows.Block(b * stride, packed[b].InputIds.Length - 1);
            var r = (TopKTeacherSignal)remoteRows.Block(b * stride, packed[b].InputIds.Length - 1);
            TensorAssert.Equal(a.Ids, r.Ids);
            TensorAssert.Close(a.LogProbs, r.LogProbs, atol: 1e-6);
        }

        // The check has teeth: the same row scored without document boundaries differs.
        using var unpacked = Batching.Collate(packed.Select(e => new TokenizedExample(e.InputIds, e.Labels)).ToList(), 0);
        using var crossRows = host.Teacher.Score(unpacked, request);
        var packedFirst = (TopKTeacherSignal)localRows.Block(0, packed[0].InputIds.Length - 1);
        var crossFirst = (TopKTeacherSignal)crossRows.Block(0, packed[0].InputIds.Length - 1);
        using var gap = (packedFirst.LogProbs - crossFirst.LogProbs).abs().max();
        Assert.True(gap.item<float>() > 1e-4, $"documents did not change the teacher's rows (gap {gap.item<float>()})");
    }

    private TrainConfig Config(string name, string teacherModel) => new()
    {
        Recipe = "kd",
        Seed = 3,
        OutputDir = _dir.Combine(name),
        Student = new StudentConfig { Model = Student() },
        Teachers = [new TeacherConfig { Model = teacherModel }],
        Signal = new SignalConfig { Format = "topk", K = 16, Precision = "fp32" },
        Loss = new LossConfig { Kind = "fkl", KdRatio = 0.8 },
        Dataset = new DatasetConfig { Path = Dataset(), MaxLength = 32, EvalFraction = 0 },
        Training = new TrainingConfig { MaxSteps = 5, BatchSize = 4, Optimizer = new OptimizerConfig { Lr = 3e-3 } },
    };

    private string Student()
    {
        var folder = _dir.Combine("student");
        if (!Directory.Exists(folder))
        {
            using var model = TinyModels.Create("qwen2", 4);
            TinyModels.SaveWithByteTokenizer(model, folder);
        }

        return folder;
    }

    private string Dataset()
    {
        var path = _dir.Combine("data.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, 20).Select(i => $"{{\"text\": \"row {i} says {new string((char)('a' + i % 26), i % 7 + 1)}\"}}"));
        return path;
    }

    private static List<double> Losses(TrainConfig config) =>
        File.ReadAllLines(Path.Combine(config.OutputDir, "metrics.jsonl")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToList();

    [Fact]
    public async Task KdRun_ThroughTheTeacherService_GivesTheInProcessLosses_EvenWhenTheTeacherRestarts()
    {
        await using var host = await TeacherHost.StartAsync();
        var teacherModel = host.TeacherFolder;
        var local = Config("local", teacherModel);
        var remote = Config("remote", teacherModel);
        var flaky = Config("flaky", teacherModel);

        await KdRecipe.RunAsync(local, RerunPolicy.Resume, null, default);
        var connected = await RemoteTeacher.ConnectAsync(host.Channel.CreateCallInvoker(), FastRetry);
        await KdRecipe.RunAsync(remote, RerunPolicy.Resume, null, default, _ => connected);
        var restarting = await RemoteTeacher.ConnectAsync(host.Channel.Intercept(new FailFirst(2)), FastRetry);
        await KdRecipe.RunAsync(flaky, RerunPolicy.Resume, null, default, _ => restarting);

        var expected = Losses(local);
        Assert.Equal(5, expected.Count);
        Assert.Equal(expected.Count, Losses(remote).Count);
        for (var i = 0; i < expected.Count; i++)
            Assert.Equal(expected[i], Losses(remote)[i], 5);
        Assert.Equal(Losses(remote), Losses(flaky));
        Assert.Equal(2, restarting.Retries);
    }

    [Fact]
    public async Task SecondEpoch_IsServedFromTheCache()
    {
        await using var host = await TeacherHost.StartAsync();
        var config = Config("epochs", host.TeacherFolder);
        config.Training = new TrainingConfig { Epochs = 2, BatchSize = 4, Optimizer = new OptimizerConfig { Lr = 1e-3 } };
        var remote = await RemoteTeacher.ConnectAsync(host.Channel.CreateCallInvoker(), FastRetry);

        var result = await KdRecipe.RunAsync(config, RerunPolicy.Resume, null, default, _ => remote);

        // 20 rows, batch 4: 5 steps per epoch, every sequence scored once per epoch.
        Assert.Equal(10, result.Steps);
        Assert.Equal(40, remote.ScoredSequences);
        Assert.Equal(20, remote.CachedSequences);
        Assert.Equal(0.5, remote.CacheHitRatio);
    }

    public void Dispose() => _dir.Dispose();
}
