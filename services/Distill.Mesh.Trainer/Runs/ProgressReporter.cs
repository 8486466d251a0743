using Distill.Mesh.Contracts.Trainer.V1;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Trainer.Grpc;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Trainer.Runs;

/// <summary>
/// Streams a job's run events to the controller (Trainer:ReportTo) so `distill run watch` and the
/// DistillationRun's status follow the pod. Best effort: a controller that is away is retried
/// with backoff and missed steps are not replayed twice; the run never waits for its reporter.
/// </summary>
public sealed class ProgressReporter(MeshChannels channels, ILogger<ProgressReporter> logger)
{
    public async Task ReportAsync(TrainerRun run, string address, CancellationToken cancellationToken)
    {
        var client = new ProgressSink.ProgressSinkClient(channels.For(address));
        var delay = TimeSpan.FromSeconds(1);
        long sentStep = -1;
        var sentStages = new HashSet<string>(StringComparer.Ordinal);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                using var call = client.Report(MeshAuth.Headers(channels.TokenFor(address)), cancellationToken: cancellationToken);
                var last = run.Last;
                await foreach (var update in run.WatchAsync(cancellationToken))
                {
                    last = update.Step ?? last;
                    // A reconnect replays the run's history: what the controller already has is skipped.
                    if (update.Step is { } step && step.Step <= sentStep)
                        continue;
                    if (update.Stage is { } stage && !sentStages.Add($"{stage.Name}:{stage.State}:{stage.Done}"))
                        continue;
                    await call.RequestStream.WriteAsync(TrainerMessages.Event(run.RunId, update, last), cancellationToken);
                    sentStep = Math.Max(sentStep, update.Step?.Step ?? -1);
                    delay = TimeSpan.FromSeconds(1);
                }

                await call.RequestStream.CompleteAsync();
                await call.ResponseAsync;
                return;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException e)
            {
                logger.LogWarning("Reporting run {Run} to {Address} failed ({Status}: {Detail}); retrying in {Delay}", run.RunId, address, e.StatusCode, e.Status.Detail, delay);
                await Task.Delay(delay, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
                delay = TimeSpan.FromSeconds(Math.Min(30, delay.TotalSeconds * 2));
            }
        }
    }
}
