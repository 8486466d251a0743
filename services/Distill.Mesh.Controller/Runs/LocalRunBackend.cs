using System.Diagnostics;
using Distill.Mesh.Specs.Storage;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Contracts.Trainer.V1;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Specs.Runs;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Controller.Runs;

/// <summary>
/// Runs on this machine: each run is handed, whole, to a trainer service (mesh.trainer, or
/// Controller:Trainer), which takes it through its stages and keeps it on its volume. The
/// controller keeps a record of every run it accepted (Controller:RunsDirectory, one JSON file
/// each: the spec, its hash, the trainer, the last state seen), so after a restart it still lists,
/// watches and cancels them; when a trainer cannot be reached, the last state seen is reported with
/// the reason.
/// </summary>
public sealed class LocalRunBackend(IServiceChannels channels, IOptions<MeshOptions> mesh, IOptions<ControllerOptions> options, Kubernetes.OperatorMetrics metrics, ILogger<LocalRunBackend> logger)
    : IRunBackend, IHostedService
{
    private readonly ConcurrentDictionary<string, RunRecordFile> _records = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _submit = new(1, 1);

    /// <summary>A run as the controller keeps it.</summary>
    public sealed record RunRecordFile(string RunId, string Spec, IReadOnlyList<string> Overrides, string Sha256, string Trainer, DateTime Created, string? LastJson, string? TraceId = null);

    private string Root => Path.GetFullPath(options.Value.RunsDirectory);

    public RunValidation Validation => new(CheckPaths: options.Value.CheckPaths, ThroughMesh: true);

    /// <summary>The token for calls to <paramref name="trainer"/>, unless a spec named a host outside the mesh (<see cref="TokenHosts"/>).</summary>
    private Metadata Auth(string trainer) => MeshAuth.Headers(TokenHosts.Allows(trainer, mesh.Value.TokenHosts) ? mesh.Value.AuthToken : null);

    private DateTime Deadline => DateTime.UtcNow + options.Value.CallTimeout;

    private TrainerService.TrainerServiceClient Client(string trainer) => new(channels.For(trainer));

    public async Task<Run> SubmitAsync(string runId, string specText, IReadOnlyList<string> overrides, ParsedRunSpec spec, CancellationToken cancellationToken)
    {
        // The Submit call's own span learns the run id here (it may have been generated).
        Activity.Current.ForRun(runId);
        using var activity = MeshTelemetry.Source.StartActivity("controller.submit").ForRun(runId);
        await _submit.WaitAsync(cancellationToken);
        try
        {
            if (_records.TryGetValue(runId, out var existing))
            {
                return existing.Sha256 == spec.Sha256
                    ? (await GetAsync(runId, cancellationToken)).Resubmission()
                    : throw new RunConflictException($"run '{runId}' exists with another spec (sha256 {existing.Sha256[..12]}…, this one {spec.Sha256[..12]}…); a run keeps its id and its spec for good, so submit this spec under another run id");
            }

            var trainer = spec.Spec.Mesh.Trainer ?? options.Value.Trainer;
            var request = new StartRequest { RunId = runId, ConfigYaml = specText };
            request.Overrides.AddRange(overrides);
            var info = await CallAsync(trainer, () => Client(trainer).StartAsync(request, Auth(trainer), Deadline, cancellationToken).ResponseAsync, cancellationToken: cancellationToken);
            var run = TrainerRunMapping.ToRun(info);
            var record = new RunRecordFile(runId, specText, overrides, spec.Sha256, trainer, DateTime.UtcNow, JsonFormatter.Default.Format(run), Activity.Current?.TraceId.ToHexString());
            Save(record);
            return WithTrace(run, record);
        }
        finally
        {
            _submit.Release();
        }
    }

    public async Task<Run> GetAsync(string runId, CancellationToken cancellationToken)
    {
        var record = Record(runId);
        try
        {
            var list = await CallAsync(record.Trainer, () => Client(record.Trainer).ListAsync(new ListRequest(), deadline: Deadline, cancellationToken: cancellationToken).ResponseAsync, cancellationToken: cancellationToken);
            return Observe(record, list.Runs.FirstOrDefault(r => r.RunId == runId));
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            return LastSeen(record, e.Status.Detail);
        }
    }

    public async Task<IReadOnlyList<Run>> ListAsync(CancellationToken cancellationToken)
    {
        var runs = new List<Run>();
        foreach (var group in _records.Values.GroupBy(r => r.Trainer, StringComparer.Ordinal))
        {
            IReadOnlyList<Contracts.Trainer.V1.RunInfo>? listed = null;
            string? unreachable = null;
            try
            {
                listed = (await CallAsync(group.Key, () => Client(group.Key).ListAsync(new ListRequest(), deadline: Deadline, cancellationToken: cancellationToken).ResponseAsync, cancellationToken: cancellationToken)).Runs;
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
            {
                unreachable = e.Status.Detail;
            }

            runs.AddRange(group.Select(record => unreachable is null ? Observe(record, listed!.FirstOrDefault(r => r.RunId == record.RunId)) : LastSeen(record, unreachable)));
        }

        return runs.OrderBy(r => r.RunId, StringComparer.Ordinal).ToList();
    }

    public async IAsyncEnumerable<RunEvent> WatchAsync(string runId, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var record = Record(runId);
        var snapshot = await GetAsync(runId, cancellationToken);
        yield return new RunEvent { RunId = runId, Phase = snapshot.Phase, Time = Timestamp.FromDateTime(DateTime.UtcNow), Stage = snapshot.CurrentStage, Snapshot = snapshot };
        if (snapshot.Phase is RunPhase.Succeeded or RunPhase.Failed or RunPhase.Cancelled)
            yield break;
        using var call = Client(record.Trainer).Watch(new WatchRequest { RunId = runId }, cancellationToken: cancellationToken);
        await using var events = call.ResponseStream.ReadAllAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
        while (await CallAsync(record.Trainer, () => events.MoveNextAsync().AsTask(), unary: false))
        {
            if (TrainerRunMapping.ToEvent(events.Current) is { } mapped)
                yield return mapped;
        }

        // The closing event: the run as it ended.
        var final = await GetAsync(runId, cancellationToken);
        yield return new RunEvent { RunId = runId, Phase = final.Phase, Time = Timestamp.FromDateTime(DateTime.UtcNow), Snapshot = final };
    }

    public async Task<Run> CancelAsync(string runId, CancellationToken cancellationToken)
    {
        var record = Record(runId);
        await CallAsync(record.Trainer, () => Client(record.Trainer).CancelAsync(new CancelRequest { RunId = runId }, Auth(record.Trainer), Deadline, cancellationToken).ResponseAsync, cancellationToken: cancellationToken);
        return await GetAsync(runId, cancellationToken);
    }

    private RunRecordFile Record(string runId) =>
        _records.TryGetValue(runId, out var record) ? record : throw new KeyNotFoundException($"no run '{runId}'");

    /// <summary>The trainer's view of the run, kept as the last state seen.</summary>
    private Run Observe(RunRecordFile record, Contracts.Trainer.V1.RunInfo? info)
    {
        if (info is null)
            return LastSeen(record, $"the trainer at {record.Trainer} no longer has this run (its runs folder was replaced?)");
        var run = TrainerRunMapping.ToRun(info);
        metrics.Observe(run.RunId, run.Phase.ToString());
        var json = JsonFormatter.Default.Format(run);
        if (json != record.LastJson)
            Save(record with { LastJson = json });
        return WithTrace(run, record);
    }

    private static Run WithTrace(Run run, RunRecordFile record)
    {
        run.TraceId = record.TraceId ?? "";
        return run;
    }

    private static Run LastSeen(RunRecordFile record, string why)
    {
        var run = record.LastJson is null ? new Run { RunId = record.RunId, Phase = RunPhase.Pending } : JsonParser.Default.Parse<Run>(record.LastJson);
        run.Reason = $"{why} (showing the state last seen)";
        return WithTrace(run, record);
    }

    /// <summary>
    /// Runs a call to <paramref name="trainer"/>; a trainer that cannot be reached or does not answer
    /// within the call timeout is named in the error. A server may reset a call at its deadline
    /// before the client's own timer fires; a unary call that fails after its whole timeout is a
    /// timeout, whatever the transport reported.
    /// </summary>
    private async Task<T> CallAsync<T>(string trainer, Func<Task<T>> call, bool unary = true, CancellationToken cancellationToken = default)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            return await call();
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded
            || (unary && e.StatusCode is StatusCode.Cancelled or StatusCode.Internal && !cancellationToken.IsCancellationRequested
                && System.Diagnostics.Stopwatch.GetElapsedTime(started) >= options.Value.CallTimeout))
        {
            var code = e.StatusCode == StatusCode.Unavailable ? StatusCode.Unavailable : StatusCode.DeadlineExceeded;
            throw new RpcException(new Status(code, $"the trainer at {trainer} {(code == StatusCode.Unavailable ? "is unreachable" : "did not answer in time")} ({e.Status.Detail})"));
        }
    }

    private void Save(RunRecordFile record)
    {
        Directory.CreateDirectory(Root);
        AtomicFile.WriteAllText(Path.Combine(Root, $"{record.RunId}.json"), JsonSerializer.Serialize(record));
        _records[record.RunId] = record;
    }

    /// <summary>Reads the records; a damaged one is moved aside with a warning, never fatal.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(Root))
            return Task.CompletedTask;
        foreach (var path in Directory.GetFiles(Root, "*.json"))
        {
            try
            {
                var record = JsonSerializer.Deserialize<RunRecordFile>(File.ReadAllText(path)) ?? throw new JsonException("empty");
                RunIds.Check(record.RunId);
                if (record.RunId != Path.GetFileNameWithoutExtension(path))
                    throw new JsonException($"it names run '{record.RunId}'");
                _records[record.RunId] = record;
            }
            catch (Exception e) when (e is JsonException or ArgumentException or InvalidProtocolBufferException)
            {
                var target = Path.Combine(Root, ".quarantine", $"{Path.GetFileName(path)}.{DateTime.UtcNow:yyyyMMddHHmmss}");
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Move(path, target);
                logger.LogWarning("Run record {Path} could not be read ({Reason}); moved to {Target}", path, e.Message, target);
            }
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
