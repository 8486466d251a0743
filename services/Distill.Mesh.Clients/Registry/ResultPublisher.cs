using System.Text.Json.Nodes;
using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Recipes;
using Grpc.Core;
using Grpc.Net.Client;

namespace Distill.Mesh.Clients.Registry;

/// <summary>Pushes a finished run's adapter or model to the registry with its lineage (teachers, base, recipe, config, final metrics).</summary>
public static class ResultPublisher
{
    /// <summary>Pushes a finished train run's result (its adapter or model).</summary>
    public static Task<Artifact> PublishAsync(
        TrainConfig config, JsonObject? resolved, TrainResult result, string runId, GrpcChannel channel, Metadata? headers, CancellationToken cancellationToken) =>
        PublishAsync(config, result.AdapterPath ?? result.ModelPath ?? throw new InvalidOperationException("the run wrote no adapter or model to publish"),
            config.Student.Model, config.Recipe, result.FinalEval, runId, resolved?.ToJsonString() ?? "", channel, headers, cancellationToken);

    /// <summary>Pushes <paramref name="folder"/> (an adapter or model folder) with the run's lineage and metrics, then points the publish section's tags at it.</summary>
    /// <param name="config">The run (teachers, publish section).</param>
    /// <param name="folder">What to push.</param>
    /// <param name="baseModel">The model it derives from (an adapter's base).</param>
    /// <param name="method">How it was made: the recipe, or "extract".</param>
    /// <param name="metrics">Its evaluation, if any.</param>
    /// <param name="runId">The run.</param>
    /// <param name="configJson">The run's resolved config or spec.</param>
    /// <param name="channel">The registry.</param>
    /// <param name="headers">Bearer token headers.</param>
    /// <param name="cancellationToken">Cancels the push.</param>
    public static async Task<Artifact> PublishAsync(TrainConfig config, string folder, string baseModel, string method, EvalResult? metrics, string runId, string configJson,
        GrpcChannel channel, Metadata? headers, CancellationToken cancellationToken)
    {
        var publish = config.Publish ?? throw new InvalidOperationException("the config has no publish section");
        var lineage = new Lineage
        {
            BaseModel = baseModel,
            BaseFingerprint = Fingerprint(baseModel),
            Method = method,
            RunId = runId,
            ConfigJson = configJson,
        };
        foreach (var teacher in config.Teachers)
        {
            lineage.Teachers.Add(teacher.Model);
            lineage.TeacherFingerprints.Add(Fingerprint(teacher.Model));
        }

        if (metrics is { } eval)
        {
            lineage.Metrics["perplexity"] = eval.Perplexity;
            lineage.Metrics["eval_tokens"] = eval.Tokens;
            if (eval.KlToTeacher is { } kl)
                lineage.Metrics["kl_to_teacher"] = kl;
            if (eval.Top1Agreement is { } top1)
                lineage.Metrics["top1_agreement"] = top1;
        }

        var registry = new RegistryService.RegistryServiceClient(channel);
        var artifact = await new RegistryClient(registry, headers).PushAsync(folder, RegistryClient.ManifestOf(folder, publish.Name, lineage), cancellationToken: cancellationToken);
        foreach (var tag in publish.Tags)
            artifact = await registry.TagAsync(new TagRequest { Ref = artifact.Id, Tag = tag }, headers, deadline: DateTime.UtcNow.AddMinutes(1), cancellationToken: cancellationToken);
        return artifact;
    }

    /// <summary>A local model folder's fingerprint; empty for what is not one (a remote teacher's endpoint).</summary>
    private static string Fingerprint(string folder) =>
        File.Exists(Path.Combine(folder, "config.json")) ? SafetensorsCheckpoint.Fingerprint(folder) : "";
}
