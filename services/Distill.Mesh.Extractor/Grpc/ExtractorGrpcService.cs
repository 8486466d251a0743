using Distill.Mesh.Clients.Extractor;
using System.Threading.Channels;
using Distill.Mesh.Contracts.Extractor.V1;
using Distill.Mesh.Modeling.Extraction;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Extractor.Grpc;

/// <summary>Runs extraction shards and consolidations for remote callers (one worker per GPU pod on a cluster).</summary>
public sealed class ExtractorGrpcService(IOptions<ExtractorOptions> options, ILogger<ExtractorGrpcService> logger) : ExtractorService.ExtractorServiceBase
{
    public const string ExtractMethod = "/distill.extractor.v1.ExtractorService/Extract";
    public const string ConsolidateMethod = "/distill.extractor.v1.ExtractorService/Consolidate";

    public override async Task Extract(ExtractRequest request, IServerStreamWriter<ExtractEvent> responseStream, ServerCallContext context)
    {
        var (teacher, student, output) = Paths(request.Job);
        var extraction = ExtractionMessages.ToOptions(request.Job.Options);
        var events = Channel.CreateUnbounded<ExtractEvent>(new UnboundedChannelOptions { SingleReader = true });
        var cancellation = context.CancellationToken;
        // The SVDs are CPU/GPU-bound: off the request thread, with events handed back through a channel.
        var work = Task.Run(() =>
        {
            try
            {
                using var extractor = Open(teacher, student, extraction);
                void Forward(ExtractionEvent e)
                {
                    if (e.Kind != "consolidated")
                        events.Writer.TryWrite(ExtractionMessages.ToMessage(e));
                }

                if (request.HasShardIndex)
                {
                    extractor.RunShard(output, request.ShardIndex, Forward, cancellation);
                    return;
                }

                var summary = extractor.Run(output, request.Cleanup, Forward, cancellation);
                events.Writer.TryWrite(new ExtractEvent { Kind = "consolidated", Shard = -1, Done = summary.Tensors.Count, Total = summary.Tensors.Count, Result = ExtractionMessages.ToMessage(summary, output) });
                logger.LogInformation("extracted {Output} from {Teacher} into {Student}: {Modules} modules", output, teacher, student, summary.Tensors.Count(t => t.Skipped is null));
            }
            finally
            {
                events.Writer.Complete();
            }
        }, cancellation);

        await foreach (var e in events.Reader.ReadAllAsync(CancellationToken.None))
            await responseStream.WriteAsync(e, cancellation);
        await work;
    }

    public override Task<ConsolidateResponse> Consolidate(ConsolidateRequest request, ServerCallContext context)
    {
        var (teacher, student, output) = Paths(request.Job);
        return Task.Run(() =>
        {
            using var extractor = Open(teacher, student, ExtractionMessages.ToOptions(request.Job.Options));
            return ExtractionMessages.ToMessage(extractor.Consolidate(output, request.Cleanup), output);
        }, context.CancellationToken);
    }

    /// <summary>Opens the models; a malformed checkpoint or config is the caller's bad argument.</summary>
    private static LoraExtractor Open(string teacher, string student, ExtractionOptions extraction)
    {
        try
        {
            return LoraExtractor.Open(teacher, student, extraction);
        }
        catch (Exception e) when (e is Modeling.Checkpoints.CheckpointFormatException or Modeling.Models.ModelConfigException)
        {
            throw new ArgumentException(e.Message, e);
        }
    }

    /// <summary>The job's folders, each checked against the allowed roots.</summary>
    private (string Teacher, string Student, string Output) Paths(ExtractionJob? job)
    {
        if (job is null)
            throw new RpcException(new Status(StatusCode.InvalidArgument, "job is required"));
        return (Allowed(job.TeacherModel, "job.teacher_model"), Allowed(job.StudentModel, "job.student_model"), Allowed(job.OutputDir, "job.output_dir"));
    }

    /// <summary>The full path, when it lies under an allowed root (or no roots are configured).</summary>
    private string Allowed(string path, string field)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"{field} is required"));
        var full = Path.GetFullPath(path);
        var roots = options.Value.AllowedRoots;
        if (roots.Count > 0 && !roots.Select(r => Path.GetFullPath(r).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar).Any(r => full.StartsWith(r, StringComparison.Ordinal)))
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"{field} '{path}' is outside the extractor's allowed folders"));
        return full;
    }
}
