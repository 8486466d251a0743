using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Distill.Mesh.Contracts.Trainer.V1;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Specs.Configuration;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Controller.Runs;

/// <summary>
/// Executes runs on this machine through the services' gRPC APIs: the "train" stage is a trainer
/// run (reaching the teacher service when the spec names one). The run spec is the YAML
/// `distill train` reads plus a `mesh:` section with the service addresses.
/// </summary>
public sealed class LocalRunBackend(IServiceChannels channels, IOptions<MeshOptions> mesh)
{
    private readonly ConcurrentDictionary<string, string> _trainerOf = new(StringComparer.Ordinal);

    public sealed record Submission(string RunId, string Trainer, RunInfo Info);

    private Metadata Auth() => MeshAuth.Headers(mesh.Value.AuthToken);

    public async Task<Submission> SubmitAsync(string runId, string specYaml, IReadOnlyList<string> overrides, CancellationToken cancellationToken)
    {
        using var activity = MeshTelemetry.Source.StartActivity("controller.submit");
        JsonObject spec;
        try
        {
            spec = TrainConfigLoader.Parse(specYaml);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new ArgumentException($"spec_yaml is not valid YAML: {e.Message}", e);
        }

        var section = spec["mesh"] as JsonObject ?? throw new ArgumentException("the run spec needs a 'mesh:' section with the trainer's address (mesh.trainer)");
        var trainer = section["trainer"]?.GetValue<string>() ?? throw new ArgumentException("mesh.trainer (the trainer service's address) is required");
        var teacher = section["teacher"]?.GetValue<string>();
        spec.Remove("mesh");
        var client = new TrainerService.TrainerServiceClient(channels.For(trainer));
        var request = new StartRequest { RunId = runId, ConfigYaml = spec.ToJsonString(), TeacherEndpoint = teacher ?? "" };
        request.Overrides.AddRange(overrides);
        var info = await client.StartAsync(request, Auth(), cancellationToken: cancellationToken);
        _trainerOf[info.RunId] = trainer;
        activity?.SetTag("distill.run_id", info.RunId);
        return new Submission(info.RunId, trainer, info);
    }

    private TrainerService.TrainerServiceClient Trainer(string runId) =>
        _trainerOf.TryGetValue(runId, out var trainer)
            ? new TrainerService.TrainerServiceClient(channels.For(trainer))
            : throw new KeyNotFoundException($"no run '{runId}'");

    public async IAsyncEnumerable<TrainEvent> WatchAsync(string runId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var call = Trainer(runId).Watch(new WatchRequest { RunId = runId }, cancellationToken: cancellationToken);
        await foreach (var e in call.ResponseStream.ReadAllAsync(cancellationToken))
            yield return e;
    }

    public async Task<RunInfo> GetAsync(string runId, CancellationToken cancellationToken)
    {
        var list = await Trainer(runId).ListAsync(new ListRequest(), cancellationToken: cancellationToken);
        return list.Runs.FirstOrDefault(r => r.RunId == runId) ?? throw new KeyNotFoundException($"the trainer has no run '{runId}'");
    }

    public async Task<IReadOnlyList<RunInfo>> ListAsync(CancellationToken cancellationToken)
    {
        var runs = new List<RunInfo>();
        foreach (var trainer in _trainerOf.Values.Distinct())
        {
            var list = await new TrainerService.TrainerServiceClient(channels.For(trainer)).ListAsync(new ListRequest(), cancellationToken: cancellationToken);
            runs.AddRange(list.Runs.Where(r => _trainerOf.ContainsKey(r.RunId)));
        }

        return runs.OrderBy(r => r.RunId, StringComparer.Ordinal).ToList();
    }

    public async Task<RunInfo> CancelAsync(string runId, CancellationToken cancellationToken) =>
        await Trainer(runId).CancelAsync(new CancelRequest { RunId = runId }, Auth(), cancellationToken: cancellationToken);
}
