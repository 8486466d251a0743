using Distill.Mesh.Contracts.Teacher.V1;
using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Teachers;
using Grpc.Core;
using TorchSharp;
using static TorchSharp.torch;
using ContractFormat = Distill.Mesh.Contracts.Teacher.V1.SignalFormat;
using EngineFormat = Distill.Mesh.Training.Teachers.SignalFormat;

namespace Distill.Mesh.Clients.Teacher;

/// <summary>
/// A teacher reached over gRPC, as the engine sees teachers (<see cref="ITeacherSignal"/>). Each
/// micro-batch is one Score stream carrying its sequences' real tokens; responses are decoded and
/// laid out like the in-process teacher's rows. A transient failure (the teacher restarting, the
/// queue full) retries the whole micro-batch with exponential backoff, so a training step is never
/// skipped or counted twice. Requests carry the teacher's fingerprint: a different model behind the
/// same address is refused, not silently used.
/// </summary>
public sealed class RemoteTeacher : ITeacherSignal, ITeacherGenerator
{
    private static readonly StatusCode[] Transient =
        [StatusCode.Unavailable, StatusCode.DeadlineExceeded, StatusCode.ResourceExhausted, StatusCode.Aborted, StatusCode.Unknown, StatusCode.Internal];

    private readonly TeacherService.TeacherServiceClient _client;
    private readonly TeacherDescription _description;
    private readonly RetryPolicy _retry;

    private RemoteTeacher(TeacherService.TeacherServiceClient client, TeacherDescription description, RetryPolicy retry)
    {
        _client = client;
        _description = description;
        _retry = retry;
    }

    /// <summary>How failed calls are retried.</summary>
    public sealed record RetryPolicy(int MaxAttempts = 6, TimeSpan? FirstDelay = null, TimeSpan? CallTimeout = null)
    {
        public TimeSpan Delay(int attempt) => (FirstDelay ?? TimeSpan.FromMilliseconds(200)) * Math.Pow(2, attempt);
    }

    /// <summary>Calls retried so far.</summary>
    public int Retries { get; private set; }

    /// <summary>Sequences scored so far, and how many of them the teacher served from its cache.</summary>
    public long ScoredSequences { get; private set; }

    /// <inheritdoc cref="ScoredSequences"/>
    public long CachedSequences { get; private set; }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _cacheNotes = new(StringComparer.Ordinal);

    /// <summary>What the teacher said about its cache (e.g. precomputed entries of another signal setting), each once.</summary>
    public IReadOnlyCollection<string> CacheNotes => [.. _cacheNotes.Keys];

    /// <summary>Share of sequences served from the teacher's cache.</summary>
    public double CacheHitRatio => ScoredSequences == 0 ? 0 : (double)CachedSequences / ScoredSequences;

    /// <summary>Connects and reads the teacher's description (retrying while it starts up).</summary>
    public static async Task<RemoteTeacher> ConnectAsync(CallInvoker invoker, RetryPolicy? retry = null, CancellationToken cancellationToken = default)
    {
        retry ??= new RetryPolicy();
        var client = new TeacherService.TeacherServiceClient(invoker);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var info = await client.DescribeAsync(new DescribeRequest(), deadline: DateTime.UtcNow + (retry.CallTimeout ?? TimeSpan.FromMinutes(2)), cancellationToken: cancellationToken);
                return new RemoteTeacher(client, new TeacherDescription(info.Fingerprint, info.TokenizerHash, info.VocabSize, info.TokenizerVocabSize, info.MaxContext), retry);
            }
            catch (RpcException e) when (Transient.Contains(e.StatusCode) && attempt + 1 < retry.MaxAttempts)
            {
                await Task.Delay(retry.Delay(attempt), cancellationToken);
            }
        }
    }

    public TeacherDescription Describe() => _description;

    public async Task<ITeacherRows> ScoreAsync(Batch batch, SignalRequest request, CancellationToken cancellationToken = default)
    {
        if (request.Format == EngineFormat.Dense)
            throw new ArgumentException("a remote teacher sends top-k or sampled signals (full logits never cross the network): set signal.format to topk or sampled");
        var segments = Segments(batch);
        var sequences = segments.Select(s => s.Tokens).ToArray();
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var responses = await ScoreOnceAsync(sequences, request, cancellationToken);
                ScoredSequences += responses.Length;
                CachedSequences += responses.Count(r => r.FromCache);
                return Assemble(batch, segments, responses, request);
            }
            catch (RpcException e) when (Transient.Contains(e.StatusCode) && attempt + 1 < _retry.MaxAttempts && !cancellationToken.IsCancellationRequested)
            {
                Retries++;
                await Task.Delay(_retry.Delay(attempt), cancellationToken);
            }
        }
    }

    /// <summary>
    /// One Generate stream per prompt, all in flight at once (the teacher runs them side by side).
    /// A prompt whose stream breaks is generated again from the start, with the same seed.
    /// </summary>
    public async Task<IReadOnlyList<IReadOnlyList<int>>> GenerateAsync(IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        options.Validate();
        var results = await Task.WhenAll(prompts.Select(async (prompt, i) =>
        {
            var request = new GenerateRequest
            {
                PromptIds = SignalMapping.PackIds(prompt.ToArray()),
                MaxNewTokens = options.MaxNewTokens,
                Greedy = options.Greedy,
                Temperature = options.Temperature,
                TopP = options.TopP,
                TopK = options.TopK,
                Seed = unchecked((ulong)(options.Seed + i)),
            };
            request.StopTokenIds.AddRange(options.StopTokenIds);
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    var tokens = new List<int>();
                    using var call = _client.Generate(request, deadline: DateTime.UtcNow + (_retry.CallTimeout ?? TimeSpan.FromMinutes(10)), cancellationToken: cancellationToken);
                    await foreach (var message in call.ResponseStream.ReadAllAsync(cancellationToken))
                        tokens.Add(message.TokenId);
                    return (IReadOnlyList<int>)tokens;
                }
                catch (RpcException e) when (Transient.Contains(e.StatusCode) && attempt + 1 < _retry.MaxAttempts && !cancellationToken.IsCancellationRequested)
                {
                    Retries++;
                    await Task.Delay(_retry.Delay(attempt), cancellationToken);
                }
            }
        }));
        return results;
    }

    private async Task<ScoreResponse[]> ScoreOnceAsync(int[][] sequences, SignalRequest request, CancellationToken cancellationToken)
    {
        var spec = SignalMapping.ToSpec(request);
        using var call = _client.Score(deadline: DateTime.UtcNow + (_retry.CallTimeout ?? TimeSpan.FromMinutes(10)), cancellationToken: cancellationToken);
        var responses = new ScoreResponse[sequences.Length];
        // Answers are read while the requests are written: a teacher that bounds a stream's requests
        // in flight waits for its answers to be taken before it reads more.
        var reading = Task.Run(async () =>
        {
            await foreach (var response in call.ResponseStream.ReadAllAsync(cancellationToken))
            {
                // One failed sequence fails the micro-batch (retried whole when the failure is transient).
                if (response.Error is { } error)
                    throw new RpcException(new Status((StatusCode)error.Code, $"sequence {response.RequestId} of the micro-batch: {error.Message}"));
                if (response.CacheNote.Length > 0)
                    _cacheNotes.TryAdd(response.CacheNote, true);
                responses[int.Parse(response.RequestId, System.Globalization.CultureInfo.InvariantCulture)] = response;
            }
        }, cancellationToken);
        try
        {
            for (var i = 0; i < sequences.Length; i++)
            {
                await call.RequestStream.WriteAsync(new ScoreRequest
                {
                    RequestId = i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    TokenIds = SignalMapping.PackIds(sequences[i]),
                    Signal = spec,
                    Fingerprint = _description.Fingerprint,
                }, cancellationToken);
            }

            await call.RequestStream.CompleteAsync();
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // The answers' error (a refused sequence, a missing token) says more than the broken
            // write; the server may have answered a moment before the write saw the reset stream.
            await Task.WhenAny(reading, Task.Delay(TimeSpan.FromSeconds(5), CancellationToken.None));
            if (!reading.IsFaulted)
                throw;
        }

        await reading;
        if (responses.Any(r => r is null))
            throw new RpcException(new Status(StatusCode.Aborted, "the teacher closed the stream before answering every sequence"));
        return responses;
    }

    /// <summary>What one Score sequence covers: its tokens and the batch row and position its first token sits at.</summary>
    private sealed record Segment(int Row, int Start, int[] Tokens);

    /// <summary>The sequences a batch is scored as, each one Score request (what the teacher service caches by).</summary>
    public static IEnumerable<int[]> Sequences(Batch batch) => Segments(batch).Select(s => s.Tokens);

    /// <summary>
    /// The sequences to score. Batches are right-padded (the mask is a prefix of ones), so a row's
    /// real tokens are one sequence. A packed row is split into its documents, each sent with
    /// the next document's first token: the teacher sees each document alone (as the packed
    /// forward's document-aware attention does, positions restarting at 0), and the last row
    /// of a document still gets the distribution after the whole document, as in process.
    /// </summary>
    private static List<Segment> Segments(Batch batch)
    {
        var ids = batch.InputIds.cpu().data<long>().ToArray();
        var mask = batch.AttentionMask.cpu().data<long>().ToArray();
        var documents = batch.DocumentIds?.cpu().data<long>().ToArray();
        var (rows, width) = ((int)batch.InputIds.shape[0], (int)batch.InputIds.shape[1]);
        var segments = new List<Segment>();
        for (var b = 0; b < rows; b++)
        {
            var length = Enumerable.Range(0, width).Count(t => mask[b * width + t] != 0);
            var row = Enumerable.Range(0, length).Select(t => (int)ids[b * width + t]).ToArray();
            if (documents is null)
            {
                if (length > 1)
                    segments.Add(new Segment(b, 0, row));
                continue;
            }

            for (var start = 0; start < length;)
            {
                var end = start + 1;
                while (end < length && documents[b * width + end] == documents[b * width + start])
                    end++;
                if (Math.Min(end + 1, length) - start > 1)
                    segments.Add(new Segment(b, start, row[start..Math.Min(end + 1, length)]));
                start = end;
            }
        }

        return segments;
    }

    /// <summary>
    /// Rows b·(T − 1) + t as the in-process teacher lays them out. Padding rows get a valid dummy
    /// distribution (uniform over k, no tail; zero weights when sampled): their labels are ignored,
    /// but they must not produce NaN.
    /// </summary>
    private static TargetRows Assemble(Batch batch, List<Segment> segments, ScoreResponse[] responses, SignalRequest request)
    {
        var stride = batch.InputIds.shape[1] - 1;
        var k = request.Format == EngineFormat.TopK ? request.K : request.Samples;
        var sampled = request.Format == EngineFormat.Sampled;
        var rows = batch.InputIds.shape[0] * stride;
        // Everything but the assembled tensors (on the batch's device) is freed with this scope.
        using var scope = torch.NewDisposeScope();
        var ids = torch.arange(k, dtype: ScalarType.Int64).expand(rows, k).contiguous();
        var values = sampled ? torch.zeros(rows, k) : torch.full(rows, k, -Math.Log(k));
        var extra = torch.zeros(rows, sampled ? k : 1);
        for (var i = 0; i < segments.Count; i++)
        {
            var positions = Math.Max(0, segments[i].Tokens.Length - 1);
            if (positions == 0)
                continue;
            var target = SignalCodec.Decode(SignalMapping.FromResponse(responses[i], sampled));
            if (target.Rows != positions)
                throw new RpcException(new Status(StatusCode.Internal, $"the teacher scored {target.Rows} positions of a {positions + 1}-token sequence"));
            var start = segments[i].Row * stride + segments[i].Start;
            switch (target)
            {
                case TopKTeacherSignal topK:
                    ids.narrow(0, start, positions).copy_(topK.Ids);
                    values.narrow(0, start, positions).copy_(topK.LogProbs);
                    extra.narrow(0, start, positions).copy_(topK.TailMass!.unsqueeze(-1));
                    break;
                case SampledTeacherSignal draw:
                    ids.narrow(0, start, positions).copy_(draw.Ids);
                    values.narrow(0, start, positions).copy_(draw.Weights);
                    extra.narrow(0, start, positions).copy_(draw.LogProbs);
                    break;
            }
        }

        var device = batch.InputIds.device;
        Tensor OnDevice(Tensor t) => t.to(device).MoveToOuterDisposeScope();
        TeacherTarget assembled = sampled
            ? new SampledTeacherSignal(OnDevice(ids), OnDevice(values), OnDevice(extra))
            : new TopKTeacherSignal(OnDevice(ids), OnDevice(values), request.Mode, OnDevice(extra.squeeze(-1)));
        return new TargetRows(assembled, owns: true);
    }

    public void Dispose()
    {
    }
}
