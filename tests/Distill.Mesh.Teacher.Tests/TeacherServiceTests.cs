using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Contracts.Teacher.V1;
using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Teacher.Grpc;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Teachers;
using Grpc.Core;
using TorchSharp;
using static TorchSharp.torch;
using ContractFormat = Distill.Mesh.Contracts.Teacher.V1.SignalFormat;

namespace Distill.Mesh.Teacher.Tests;

public class TeacherServiceTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static ScoreRequest Request(string id, int[] ids, int k = 8, ValuePrecision precision = ValuePrecision.Fp32, ContractFormat format = ContractFormat.TopK) => new()
    {
        RequestId = id,
        TokenIds = SignalMapping.PackIds(ids),
        Signal = new SignalSpec { Format = format, K = k, Temperature = 1.0, Precision = precision, Seed = 3 },
    };

    private static async Task<List<ScoreResponse>> Score(TeacherHost host, params ScoreRequest[] requests)
    {
        var client = new TeacherService.TeacherServiceClient(host.Channel);
        using var call = client.Score(deadline: DateTime.UtcNow + Timeout);
        foreach (var request in requests)
            await call.RequestStream.WriteAsync(request);
        await call.RequestStream.CompleteAsync();
        var responses = new List<ScoreResponse>();
        await foreach (var response in call.ResponseStream.ReadAllAsync())
            responses.Add(response);
        return responses;
    }

    [Fact]
    public async Task Describe_ReportsTheModelAndTokenizer()
    {
        await using var host = await TeacherHost.StartAsync();

        var info = await new TeacherService.TeacherServiceClient(host.Channel).DescribeAsync(new DescribeRequest(), deadline: DateTime.UtcNow + Timeout);

        Assert.Equal(host.Teacher.Describe().TokenizerHash, info.TokenizerHash);
        Assert.Equal(262, info.VocabSize);
        Assert.Equal("llama", info.ModelType);
        Assert.Equal(64, info.Fingerprint.Length);
    }

    [Fact]
    public async Task Score_TopK_EqualsTheInProcessSignal_AndRepeatsComeFromTheCache()
    {
        await using var host = await TeacherHost.StartAsync();
        int[] ids = [256, 72, 101, 108, 108, 111, 32, 119];

        var first = await Score(host, Request("a", ids), Request("b", [256, 50, 51]));
        var again = await Score(host, Request("a2", ids));

        var response = first.Single(r => r.RequestId == "a");
        Assert.False(response.FromCache);
        Assert.True(again[0].FromCache);
        Assert.Equal(response.Ids, again[0].Ids);
        var decoded = (TopKTeacherSignal)SignalCodec.Decode(SignalMapping.FromResponse(response, sampled: false));
        using var batch = Batching.Collate([new TokenizedExample(ids, ids.Select(i => (long)i).ToArray())], 0);
        var expected = (TopKTeacherSignal)host.Teacher.Score(batch, new SignalRequest(Training.Teachers.SignalFormat.TopK, 262, 1.0, 8)).Block(0, ids.Length - 1);
        Assert.Equal(ids.Length - 1, response.Positions);
        TensorAssert.Equal(expected.Ids, decoded.Ids);
        TensorAssert.Close(expected.LogProbs, decoded.LogProbs, atol: 1e-6);
        Assert.Equal(2, first.Single(r => r.RequestId == "b").Positions);
    }

    [Fact]
    public async Task Score_WhenOnlyAnotherSignalSettingWasPrecomputed_SaysSoOnce_NamingBoth()
    {
        await using var host = await TeacherHost.StartAsync();
        var cache = (ISignalCache)host.Services.GetService(typeof(ISignalCache))!;
        var q8 = Request("q8", [256, 1, 2], precision: ValuePrecision.Q8);
        var (signal, precision) = Scoring.CachedScorer.Signal(host.Teacher.Describe(), q8.Signal);
        await cache.RecordPrecomputedAsync(host.Teacher.Describe().Fingerprint, SignalCacheKey.Describe(signal, precision), default);

        var first = await Score(host, Request("a", [256, 5, 6, 7]));
        var second = await Score(host, Request("b", [256, 8, 9, 10]));
        var matching = await Score(host, q8);

        Assert.Contains("precomputed entries exist for topk k=8 T=1 tail vocab=262 q8", first[0].CacheNote);
        Assert.Contains("this run asks topk k=8 T=1 tail vocab=262 fp32", first[0].CacheNote);
        Assert.Equal("", second[0].CacheNote);
        Assert.Equal("", matching[0].CacheNote);
    }

    [Fact]
    public async Task Score_ConcurrentStreams_AreBatchedIntoSharedForwardPasses()
    {
        await using var host = await TeacherHost.StartAsync();
        var streams = Enumerable.Range(0, 8).Select(i => Score(host, Enumerable.Range(0, 4).Select(j => Request($"{i}-{j}", [256, 10 + i, 20 + j, 30])).ToArray())).ToList();

        var results = await Task.WhenAll(streams);

        Assert.All(results, r => Assert.Equal(4, r.Count));
        var queue = (Scoring.ScoringQueue)host.Services.GetService(typeof(Scoring.ScoringQueue))!;
        Assert.Equal(32, queue.Sequences);
        Assert.True(queue.Batches < 32, $"{queue.Batches} forward passes for 32 sequences");
    }

    [Theory]
    [InlineData("id-too-large", StatusCode.InvalidArgument, "outside the teacher's vocabulary")]
    [InlineData("k-zero", StatusCode.InvalidArgument, "signal.k must be in")]
    [InlineData("unknown-model", StatusCode.NotFound, "this teacher serves model")]
    [InlineData("oversized", StatusCode.ResourceExhausted, "exceed the limit")]
    [InlineData("no-format", StatusCode.InvalidArgument, "signal.format")]
    [InlineData("one-token", StatusCode.InvalidArgument, "a signal needs at least 2")]
    [InlineData("tiny-temperature", StatusCode.InvalidArgument, "signal.temperature must be in [0.01, 100]")]
    [InlineData("nan-temperature", StatusCode.InvalidArgument, "signal.temperature must be in")]
    public async Task Score_InvalidRequest_FailsOnlyItself_WithAPreciseCode_AndTheStreamGoesOn(string problem, StatusCode code, string message)
    {
        await using var host = await TeacherHost.StartAsync(new() { ["Teacher:MaxSequenceTokens"] = "16" });
        var request = problem switch
        {
            "id-too-large" => Request("bad", [256, 5000]),
            "k-zero" => Request("bad", [256, 5], k: 0),
            "unknown-model" => Request("bad", [256, 5]).Clone(),
            "oversized" => Request("bad", Enumerable.Repeat(5, 17).ToArray()),
            "one-token" => Request("bad", [256]),
            "tiny-temperature" => Request("bad", [256, 5]),
            "nan-temperature" => Request("bad", [256, 5]),
            _ => Request("bad", [256, 5], format: ContractFormat.Unspecified),
        };
        if (problem == "unknown-model")
            request.Fingerprint = "0123456789abcdef";
        if (problem == "tiny-temperature")
            request.Signal.Temperature = 1e-300;
        if (problem == "nan-temperature")
            request.Signal.Temperature = double.NaN;

        var responses = await Score(host, Request("before", [256, 72, 101]), request, Request("after", [256, 50, 51, 52]));

        Assert.Equal(["after", "bad", "before"], responses.Select(r => r.RequestId).Order());
        var bad = responses.Single(r => r.RequestId == "bad");
        Assert.Equal((int)code, bad.Error.Code);
        Assert.Contains(message, bad.Error.Message);
        Assert.Equal(0, bad.Positions);
        Assert.All(responses.Where(r => r.RequestId != "bad"), r => Assert.True(r.Error is null && r.Positions > 0, r.ToString()));
        Assert.Equal(2, responses.Single(r => r.RequestId == "before").Positions);
    }

    [Fact]
    public async Task Score_MoreRequestsThanTheQueueHolds_WaitForRoom_AndAllAreAnswered()
    {
        await using var host = await TeacherHost.StartAsync(new() { ["Teacher:MaxQueue"] = "2" });

        var responses = await Score(host, Enumerable.Range(0, 24).Select(i => Request($"r{i}", [256, 10 + i, 20, 30])).ToArray());

        Assert.Equal(24, responses.Count);
        Assert.All(responses, r => Assert.True(r.Error is null && r.Positions == 3, r.ToString()));
    }

    [Theory]
    [InlineData(int.MaxValue, 0.0, StatusCode.ResourceExhausted, "exceeds the teacher's context")]
    [InlineData(0, 0.0, StatusCode.InvalidArgument, "max_new_tokens must be at least 1")]
    [InlineData(-5, 0.0, StatusCode.InvalidArgument, "max_new_tokens must be at least 1")]
    [InlineData(4, 1e-300, StatusCode.InvalidArgument, "temperature must be in")]
    [InlineData(4, 0.0, StatusCode.InvalidArgument, "stop_token_ids must be at most 256 ids in [0, 262) (got 300)")]
    [InlineData(4, 0.5, StatusCode.InvalidArgument, "stop_token_ids must be at most 256 ids in [0, 262) (got 1)")]
    public async Task Generate_RefusesBoundsThatOverflowOrUnderflow(int maxNewTokens, double temperature, StatusCode code, string message)
    {
        await using var host = await TeacherHost.StartAsync();
        var client = new TeacherService.TeacherServiceClient(host.Channel);
        var request = new GenerateRequest { PromptIds = SignalMapping.PackIds([256, 72, 105]), MaxNewTokens = maxNewTokens, Temperature = temperature };
        if (message.Contains("got 300"))
            request.StopTokenIds.AddRange(Enumerable.Range(0, 300).Select(i => i % 262));
        else if (message.Contains("got 1)"))
            request.StopTokenIds.Add(5000);
        using var call = client.Generate(request, deadline: DateTime.UtcNow + Timeout);

        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(code, error.StatusCode);
        Assert.Contains(message, error.Status.Detail);
    }

    [Fact]
    public async Task Generate_StreamsTheGreedyContinuation()
    {
        await using var host = await TeacherHost.StartAsync();
        int[] prompt = [256, 72, 105];

        var client = new TeacherService.TeacherServiceClient(host.Channel);
        using var call = client.Generate(new GenerateRequest { PromptIds = SignalMapping.PackIds(prompt), MaxNewTokens = 6, Greedy = true }, deadline: DateTime.UtcNow + Timeout);
        var tokens = new List<int>();
        var reasons = new List<string>();
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            tokens.Add(message.TokenId);
            reasons.Add(message.FinishReason);
        }

        var expected = TextGenerator.Generate(host.Teacher.Model, [prompt], new GenerationOptions { Greedy = true, MaxNewTokens = 6, StopTokenIds = new HashSet<int> { 257, 259 } })[0];
        Assert.Equal(expected.Tokens, tokens);
        // Only the last message carries the finish reason.
        Assert.All(reasons.SkipLast(1), r => Assert.Equal("", r));
        Assert.Equal(expected.Reason == StopReason.StopToken ? "stop_token" : "max_new_tokens", reasons[^1]);
    }
}
