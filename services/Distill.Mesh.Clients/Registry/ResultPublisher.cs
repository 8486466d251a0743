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
    public static async Task<Artifact> PublishAsync(
        TrainConfig config, JsonObject? resolved, TrainResult result, string runId, GrpcChannel channel, Metadata? headers, CancellationToken cancellationToken)
    {
        var publish = config.Publish ?? throw new InvalidOperationException("the config has no publish section");
        var folder = result.AdapterPath ?? result.ModelPath ?? throw new InvalidOperationException("the run wrote no adapter or model to publish");
        var lineage = new Lineage
        {
            BaseModel = config.Student.Model,
            BaseFingerprint = Fingerprint(config.Student.Model),
            Method = config.Recipe,
            RunId = runId,
            ConfigJson = resolved?.ToJsonString() ?? "",
        };
        foreach (var teacher in config.Teachers)
        {
            lineage.Teachers.Add(teacher.Model);
            lineage.TeacherFingerprints.Add(Fingerprint(teacher.Model));
        }

        if (result.FinalEval is { } eval)
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
            artifact = await registry.TagAsync(new TagRequest { Ref = artifact.Id, Tag = tag }, headers, cancellationToken: cancellationToken);
        return artifact;
    }

    /// <summary>A local model folder's fingerprint; empty for what is not one (a remote teacher's endpoint).</summary>
    private static string Fingerprint(string folder) =>
        File.Exists(Path.Combine(folder, "config.json")) ? SafetensorsCheckpoint.Fingerprint(folder) : "";
}
