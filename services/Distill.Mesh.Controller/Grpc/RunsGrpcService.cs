using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Controller.Runs;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Specs.Runs;
using Grpc.Core;

namespace Distill.Mesh.Controller.Grpc;

/// <summary>The runs API: validate the whole spec, then delegate to the backend.</summary>
public sealed class RunsGrpcService(IRunBackend backend) : RunsService.RunsServiceBase
{
    public const string SubmitMethod = "/distill.runs.v1.RunsService/Submit";
    public const string CancelMethod = "/distill.runs.v1.RunsService/Cancel";

    /// <summary>Most overrides one Submit may carry, and the longest one.</summary>
    public const int MaxOverrides = 256;

    public const int MaxOverrideLength = 4096;

    public override async Task<Run> Submit(SubmitRequest request, ServerCallContext context)
    {
        var runId = string.IsNullOrEmpty(request.RunId) ? RunIds.New() : RunIds.Check(request.RunId);
        if (request.Overrides.Count > MaxOverrides || request.Overrides.Any(o => o.Length > MaxOverrideLength))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"overrides: at most {MaxOverrides}, each at most {MaxOverrideLength} characters"));
        if (string.IsNullOrWhiteSpace(request.SpecYaml))
            throw new RpcException(new Status(StatusCode.InvalidArgument, "spec_yaml is empty"));
        ParsedRunSpec spec;
        try
        {
            spec = RunSpecLoader.Parse(request.SpecYaml, request.Overrides, folder: null, "spec_yaml");
            ConfigBinder.Fail("spec_yaml", RunSpecValidator.Problems(spec, backend.Validation));
        }
        catch (ConfigException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }

        try
        {
            return await backend.SubmitAsync(runId, request.SpecYaml, [.. request.Overrides], spec, context.CancellationToken);
        }
        catch (RunConflictException e)
        {
            throw new RpcException(new Status(StatusCode.AlreadyExists, e.Message));
        }
    }

    public override async Task Watch(WatchRunRequest request, IServerStreamWriter<RunEvent> responseStream, ServerCallContext context)
    {
        await foreach (var e in backend.WatchAsync(request.RunId, context.CancellationToken))
            await responseStream.WriteAsync(e, context.CancellationToken);
    }

    public override Task<Run> Get(GetRunRequest request, ServerCallContext context) => backend.GetAsync(request.RunId, context.CancellationToken);

    public override async Task<ListRunsResponse> List(ListRunsRequest request, ServerCallContext context)
    {
        var response = new ListRunsResponse();
        response.Runs.AddRange(await backend.ListAsync(context.CancellationToken));
        return response;
    }

    public override Task<Run> Cancel(CancelRunRequest request, ServerCallContext context) => backend.CancelAsync(request.RunId, context.CancellationToken);
}
