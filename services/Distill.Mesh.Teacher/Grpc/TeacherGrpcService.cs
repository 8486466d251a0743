using Distill.Mesh.Clients.Teacher;
using System.Threading.Channels;
using Distill.Mesh.Contracts.Teacher.V1;
using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Teacher.Scoring;
using Distill.Mesh.Training.Teachers;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Teacher.Grpc;

/// <summary>Thin handlers: validate, look up the cache, queue the scoring, stream the packed signal.</summary>
public sealed class TeacherGrpcService(TeacherModel model, CachedScorer scorer, IOptions<TeacherOptions> options) : TeacherService.TeacherServiceBase
{
    private readonly string _label = TeacherMetrics.Label(options.Value.Model);

    /// <summary>Most stop tokens one Generate may name (chat templates use a handful).</summary>
    public const int MaxStopTokens = 256;

    public override Task<TeacherInfo> Describe(DescribeRequest request, ServerCallContext context)
    {
        var teacher = model.Require();
        var description = teacher.Describe();
        return Task.FromResult(new TeacherInfo
        {
            Fingerprint = description.Fingerprint,
            TokenizerHash = description.TokenizerHash,
            VocabSize = description.VocabSize,
            TokenizerVocabSize = description.TokenizerVocabSize,
            Dtype = teacher.Model.DType.ToString().ToLowerInvariant(),
            MaxContext = description.MaxContext,
            ModelType = teacher.Model.Config.ModelType,
        });
    }

    public override Task Score(IAsyncStreamReader<ScoreRequest> requestStream, IServerStreamWriter<ScoreResponse> responseStream, ServerCallContext context) =>
        Counted(() => ScoreAsync(requestStream, responseStream, context));

    public override Task Generate(GenerateRequest request, IServerStreamWriter<GenerateResponse> responseStream, ServerCallContext context) =>
        Counted(() => GenerateAsync(request, responseStream, context));

    /// <summary>Counts a refused call by its status code.</summary>
    private async Task Counted(Func<Task> call)
    {
        try
        {
            await call();
        }
        catch (RpcException e)
        {
            TeacherMetrics.Refused(_label, e.StatusCode);
            throw;
        }
    }

    private async Task ScoreAsync(IAsyncStreamReader<ScoreRequest> requestStream, IServerStreamWriter<ScoreResponse> responseStream, ServerCallContext context)
    {
        var teacher = model.Require();
        var cancellation = context.CancellationToken;
        using var writeLock = new SemaphoreSlim(1);
        // Backpressure: at most this many requests of one stream in flight; the stream's reads
        // (and HTTP/2 flow control behind them) wait for a slot rather than failing.
        using var inFlight = new SemaphoreSlim(Math.Max(1, options.Value.MaxQueue));
        var pending = new List<Task>();
        try
        {
            await foreach (var request in requestStream.ReadAllAsync(cancellation))
            {
                await inFlight.WaitAsync(cancellation);
                pending.RemoveAll(t => t.IsCompletedSuccessfully);
                pending.Add(Handle(request, System.Diagnostics.Stopwatch.GetTimestamp()));
            }
        }
        finally
        {
            // The handlers use the semaphores: they end before those are disposed, even on a broken stream.
            await Task.WhenAll(pending).ContinueWith(_ => { }, TaskScheduler.Default);
        }

        await Task.WhenAll(pending);

        async Task Handle(ScoreRequest request, long arrived)
        {
            try
            {
                ScoreResponse response;
                try
                {
                    // A bad request fails alone: its error goes back under its id, the stream goes on.
                    var (ids, signal, precision) = Validate(teacher, request);
                    var (encoded, fromCache, note) = await scorer.ScoreAsync(ids, signal, precision, cancellation);
                    response = SignalMapping.ToResponse(request.RequestId, encoded, fromCache);
                    response.CacheNote = note ?? "";
                }
                catch (RpcException e) when (!cancellation.IsCancellationRequested)
                {
                    TeacherMetrics.Refused(_label, e.StatusCode);
                    response = new ScoreResponse { RequestId = request.RequestId, Error = new RequestError { Code = (int)e.StatusCode, Message = e.Status.Detail } };
                }
                catch (Exception e) when (e is not OperationCanceledException && !cancellation.IsCancellationRequested)
                {
                    // The scoring queue logged it; the client retries (INTERNAL is transient to it).
                    TeacherMetrics.Refused(_label, StatusCode.Internal);
                    response = new ScoreResponse { RequestId = request.RequestId, Error = new RequestError { Code = (int)StatusCode.Internal, Message = "internal error" } };
                }

                await writeLock.WaitAsync(cancellation);
                try
                {
                    await responseStream.WriteAsync(response, cancellation);
                }
                finally
                {
                    writeLock.Release();
                }

                if (response.Error is null)
                    TeacherMetrics.Request(_label, TeacherMetrics.Score, System.Diagnostics.Stopwatch.GetElapsedTime(arrived), response.CalculateSize());
            }
            finally
            {
                inFlight.Release();
            }
        }
    }

    private async Task GenerateAsync(GenerateRequest request, IServerStreamWriter<GenerateResponse> responseStream, ServerCallContext context)
    {
        var arrived = System.Diagnostics.Stopwatch.GetTimestamp();
        var teacher = model.Require();
        var ids = SignalMapping.UnpackIds(request.PromptIds, "prompt_ids");
        var vocab = teacher.Model.Config.VocabSize;
        if (ids.Length == 0 || ids.Any(i => i < 0 || i >= vocab))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"prompt_ids must be non-empty ids in [0, {vocab})"));
        var window = Math.Min(teacher.Describe().MaxContext, options.Value.MaxSequenceTokens);
        if (request.MaxNewTokens < 1)
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"max_new_tokens must be at least 1 (got {request.MaxNewTokens})"));
        if ((long)ids.Length + request.MaxNewTokens > window)
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"a {ids.Length}-token prompt plus max_new_tokens {request.MaxNewTokens} exceeds the teacher's context of {window} tokens"));
        if (!request.Greedy && request.Temperature != 0 && !(request.Temperature is >= CachedScorer.MinTemperature and <= CachedScorer.MaxTemperature))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"temperature must be in [{CachedScorer.MinTemperature}, {CachedScorer.MaxTemperature}] (or 0 for 1.0), not {request.Temperature}"));
        if (request.StopTokenIds.Count > MaxStopTokens || request.StopTokenIds.Any(i => i < 0 || i >= vocab))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"stop_token_ids must be at most {MaxStopTokens} ids in [0, {vocab}) (got {request.StopTokenIds.Count})"));
        if (!(request.TopP is >= 0 and <= 1) || request.TopK < 0)
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"top_p must be in [0, 1] and top_k ≥ 0 (got {request.TopP}, {request.TopK})"));
        var stop = teacher.StopTokens.Concat(request.StopTokenIds).ToHashSet();
        var generation = new GenerationOptions
        {
            MaxNewTokens = request.MaxNewTokens,
            Greedy = request.Greedy,
            Temperature = request.Temperature > 0 ? request.Temperature : 1.0,
            TopP = request.TopP > 0 ? request.TopP : 1.0,
            TopK = request.TopK,
            Seed = (long)request.Seed,
            StopTokenIds = stop,
        };
        // Generation runs on a worker thread; each token is streamed as soon as it is chosen. The
        // last token is known when it is chosen: a stop token or the max_new_tokens-th.
        var tokens = Channel.CreateUnbounded<GenerateResponse>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var count = 0;
        var worker = Task.Run(() =>
        {
            try
            {
                TextGenerator.Generate(teacher.Model, [ids], generation, (_, token) =>
                {
                    count++;
                    var reason = stop.Contains(token) ? "stop_token" : count == generation.MaxNewTokens ? "max_new_tokens" : "";
                    tokens.Writer.TryWrite(new GenerateResponse { TokenId = token, FinishReason = reason });
                }, context.CancellationToken);
                tokens.Writer.Complete();
            }
            catch (Exception e)
            {
                tokens.Writer.Complete(e);
            }
        }, context.CancellationToken);
        var firstToken = TimeSpan.Zero;
        var sent = 0L;
        await foreach (var message in tokens.Reader.ReadAllAsync(context.CancellationToken))
        {
            if (firstToken == TimeSpan.Zero)
                firstToken = System.Diagnostics.Stopwatch.GetElapsedTime(arrived);
            sent += message.CalculateSize();
            await responseStream.WriteAsync(message, context.CancellationToken);
        }

        await worker;
        var total = System.Diagnostics.Stopwatch.GetElapsedTime(arrived);
        TeacherMetrics.Request(_label, TeacherMetrics.Generate, total, sent);
        TeacherMetrics.Generated(_label, firstToken, total - firstToken, count);
    }

    private (int[] Ids, SignalRequest Signal, SignalPrecision Precision) Validate(InProcessTeacher teacher, ScoreRequest request)
    {
        var description = teacher.Describe();
        if (!string.IsNullOrEmpty(request.Fingerprint) && request.Fingerprint != description.Fingerprint)
            throw new RpcException(new Status(StatusCode.NotFound, $"this teacher serves model {description.Fingerprint[..12]}…, not {request.Fingerprint}"));
        var ids = SignalMapping.UnpackIds(request.TokenIds, "token_ids");
        if (ids.Length < 2)
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"token_ids has {ids.Length} token(s): a signal needs at least 2 (one for each next token after the first)"));
        if (ids.Length > Math.Min(description.MaxContext, options.Value.MaxSequenceTokens))
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"{ids.Length} tokens exceed the limit of {Math.Min(description.MaxContext, options.Value.MaxSequenceTokens)} per sequence"));
        if (ids.Any(i => i < 0 || i >= description.VocabSize))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"token id {ids.First(i => i < 0 || i >= description.VocabSize)} is outside the teacher's vocabulary [0, {description.VocabSize})"));
        var (signal, precision) = CachedScorer.Signal(description, request.Signal);
        return (ids, signal, precision);
    }
}
