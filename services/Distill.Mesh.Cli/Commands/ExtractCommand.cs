using Distill.Mesh.Specs.Storage;
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Distill.Mesh.Cli.Display;
using Distill.Mesh.Contracts.Extractor.V1;
using SvdMethod = Distill.Mesh.Modeling.Extraction.SvdMethod;
using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.Clients.Extractor;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Extraction;
using Distill.Mesh.Clients.Registry;
using Distill.Mesh.ServiceDefaults;
using Grpc.Core;
using Distill.Mesh.Training.Evaluation;
using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill extract --teacher DIR --student DIR --out DIR</c>: a PEFT LoRA adapter that moves
/// the student towards the teacher in weight space. <c>--shards N --shard-index I</c> runs one
/// shard (one worker); <c>--consolidate</c> merges finished shards; with neither, every shard not
/// yet finished runs here and the result is consolidated.
/// </summary>
internal static class ExtractCommand
{
    /// <summary>File the before/after evaluation goes to, beside the adapter.</summary>
    public const string EvaluationFileName = "extraction_eval.json";

    public static Command Create()
    {
        var teacher = new Option<string>("--teacher") { Description = "teacher HF model folder", Required = true };
        var student = new Option<string>("--student") { Description = "student HF model folder (the adapter's base model)", Required = true };
        var outFolder = new Option<string>("--out") { Description = "output folder: adapter_model.safetensors, adapter_config.json, extraction_report.json", Required = true };
        var rank = new Option<int>("--rank") { Description = "LoRA rank", DefaultValueFactory = _ => 16 };
        var rankPattern = new Option<string?>("--rank-pattern") { Description = "ranks per module type or path, e.g. q_proj=8,down_proj=32" };
        var alpha = new Option<double?>("--alpha") { Description = "lora_alpha (default: alpha = rank for every module)" };
        var svd = new Option<string>("--svd") { Description = "exact | randomized", DefaultValueFactory = _ => "exact" };
        var oversample = new Option<int>("--oversample") { DefaultValueFactory = _ => 8 };
        var powerIterations = new Option<int>("--power-iterations") { DefaultValueFactory = _ => 2 };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 0 };
        var targets = new Option<string?>("--target-modules") { Description = "module types to extract, e.g. q_proj,v_proj (default: every linear weight of the layers)" };
        var lmHead = new Option<bool>("--include-lm-head") { Description = "also extract lm_head" };
        var embeddings = new Option<bool>("--include-embeddings") { Description = "also extract embed_tokens (PEFT embedding LoRA; not for tied embeddings)" };
        var adapterDtype = new Option<string>("--adapter-dtype") { DefaultValueFactory = _ => "float32" };
        var optimum = new Option<bool>("--optimum") { Description = "also report the Eckart–Young optimum with --svd randomized (costs the singular values of every delta; with exact it is free and always reported)" };
        var noOptimum = new Option<bool>("--no-optimum") { Description = "never report the optimum" };
        var shards = new Option<int>("--shards") { Description = "shards the work is split into", DefaultValueFactory = _ => 1 };
        var shardIndex = new Option<int?>("--shard-index") { Description = "run only this shard (a worker); consolidate later" };
        var consolidate = new Option<bool>("--consolidate") { Description = "only merge the finished shards" };
        var cleanup = new Option<bool>("--cleanup") { Description = "remove the shard files after a verified consolidation" };
        var dataset = new Option<string?>("--eval-dataset") { Description = "dataset for the student's KL to the teacher and perplexity, before and after the adapter" };
        var maxLength = new Option<int>("--max-length") { DefaultValueFactory = _ => 1024 };
        var json = new Option<bool>("--json") { Description = "print the report as JSON" };
        var extractorAddress = new Option<string?>("--extractor") { Description = "run on an extractor service (e.g. http://127.0.0.1:7104) instead of in this process; paths are the service's" };
        var push = new Option<string?>("--push") { Description = "push the adapter to the registry under this name, with its lineage and metrics" };
        var registry = new Option<string>("--registry") { Description = "registry address for --push", DefaultValueFactory = _ => $"http://127.0.0.1:{UpCommand.RegistryPort}" };
        var token = MeshCliOptions.Token("the extractor and the registry");
        var trust = MeshCliOptions.Trust("the extractor and the registry");
        var command = new Command("extract", "Weight-space distillation: a LoRA adapter from teacher − student (SVD, layer map, MoE expert clustering)")
        {
            teacher, student, outFolder, rank, rankPattern, alpha, svd, oversample, powerIterations, seed, targets, lmHead, embeddings, adapterDtype, optimum, noOptimum,
            shards, shardIndex, consolidate, cleanup, dataset, maxLength, json, extractorAddress, push, registry, token, trust,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            try
            {
                var options = new ExtractionOptions
                {
                    Rank = parse.GetValue(rank),
                    RankPattern = ParsePattern(parse.GetValue(rankPattern)),
                    Alpha = parse.GetValue(alpha),
                    Svd = parse.GetValue(svd)!.ToLowerInvariant() switch
                    {
                        "exact" => SvdMethod.Exact,
                        "randomized" => SvdMethod.Randomized,
                        var other => throw new ArgumentException($"--svd must be exact or randomized (got '{other}')"),
                    },
                    Oversample = parse.GetValue(oversample),
                    PowerIterations = parse.GetValue(powerIterations),
                    Seed = parse.GetValue(seed),
                    TargetModules = parse.GetValue(targets)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
                    IncludeLmHead = parse.GetValue(lmHead),
                    IncludeEmbeddings = parse.GetValue(embeddings),
                    AdapterDtype = CommandRunner.ParseDType(parse.GetValue(adapterDtype)!),
                    ReportOptimum = parse.GetValue(noOptimum) ? false : parse.GetValue(optimum) ? true : null,
                    Shards = parse.GetValue(shards),
                };
                var folder = parse.GetValue(outFolder)!;
                var (teacherFolder, studentFolder) = (parse.GetValue(teacher)!, parse.GetValue(student)!);
                // A bar per shard (tensors); the extractor's messages go above the bars.
                var display = ProgressDisplays.For(error);
                var shardPhases = new Dictionary<int, IProgressPhase>();
                void Report(ExtractionEvent e)
                {
                    lock (shardPhases)
                    {
                        if (e.Kind == "tensor" && e.Tensor is { } t)
                        {
                            if (!shardPhases.TryGetValue(e.Shard, out var phase))
                                shardPhases[e.Shard] = phase = display.Start($"shard {e.Shard}", e.Total, ProgressUnit.Of("tensors"));
                            phase.Set(e.Done, $"{t.Module}: {(t.Skipped is null ? $"r {t.Rank}, {t.Projection}, error {t.RelativeError:F4}" : $"skipped ({t.Skipped})")}");
                            if (e.Done >= e.Total)
                                phase.Complete();
                        }
                        else if (e.Message.Length > 0)
                        {
                            display.Log.WriteLine(e.Message);
                        }
                    }
                }

                ExtractionSummary? summary;
                using (display)
                {
                    if (parse.GetValue(extractorAddress) is { } address)
                    {
                        summary = await RemoteAsync(address, parse.GetValue(trust), MeshCliOptions.TokenValue(parse, token), teacherFolder, studentFolder, folder, options, parse.GetValue(shardIndex), parse.GetValue(consolidate), parse.GetValue(cleanup), Report, cancellationToken);
                        if (parse.GetValue(shardIndex) is { } remoteShard)
                        {
                            display.Dispose();
                            output.WriteLine($"shard {remoteShard} of {options.Shards} finished on {address}");
                        }
                    }
                    else
                    {
                        using var extractor = LoraExtractor.Open(teacherFolder, studentFolder, options);
                        if (parse.GetValue(shardIndex) is { } index)
                        {
                            var shard = extractor.RunShard(folder, index, Report, cancellationToken);
                            var finished = Enumerable.Range(0, options.Shards).Count(s => extractor.Finished(folder, s) is not null);
                            display.Dispose();
                            output.WriteLine($"shard {index} of {options.Shards}: {shard.Tensors.Count} tensors, sha256 {shard.Sha256}; {finished}/{options.Shards} shards finished"
                                + (finished == options.Shards ? "; now run the same command with --consolidate instead of --shard-index" : ""));
                            summary = null;
                        }
                        else
                        {
                            summary = parse.GetValue(consolidate)
                                ? extractor.Consolidate(folder, parse.GetValue(cleanup), Report)
                                : extractor.Run(folder, parse.GetValue(cleanup), Report, cancellationToken);
                        }
                    }
                }

                if (summary is null)
                    return 0;
                AdapterEffect? effect = null;
                if (parse.GetValue(dataset) is { } path)
                {
                    effect = await AdapterEffect.MeasureAsync(teacherFolder, studentFolder, folder, path, parse.GetValue(maxLength), cancellationToken);
                    AtomicFile.WriteAllText(Path.Combine(folder, EvaluationFileName), JsonSerializer.Serialize(effect, CommandRunner.Json) + "\n");
                }

                if (parse.GetValue(push) is { } name)
                {
                    var artifact = await PushAsync(parse.GetValue(registry)!, parse.GetValue(trust), MeshCliOptions.TokenValue(parse, token), name, folder, teacherFolder, studentFolder, options, summary, effect, cancellationToken);
                    error.WriteLine($"pushed {artifact.Manifest.Name}:{artifact.Version} ({artifact.Id[..12]}) to {parse.GetValue(registry)}");
                }

                if (parse.GetValue(json))
                {
                    CommandRunner.WriteJson(output, new { Summary = summary, Evaluation = effect });
                    return 0;
                }

                Print(output, summary, effect, folder);
                return 0;
            }
            catch (Exception e) when (e is ArgumentException or FileNotFoundException or DirectoryNotFoundException or CheckpointFormatException
                or InvalidOperationException or IncompatibleTeacherException or Training.Datasets.DatasetFormatException
                or Modeling.Tokenization.TokenizerFormatException or Modeling.Adapters.AdapterFormatException or Modeling.Models.ModelConfigException)
            {
                error.WriteLine($"error: {e.Message}");
                return 1;
            }
            catch (RpcException e)
            {
                // The extractor when the work went there, else the registry (--push).
                error.WriteLine(parse.GetValue(extractorAddress) is { } remote
                    ? $"error: {MeshErrors.Describe(e, "extractor", remote)}"
                    : $"error: {MeshErrors.Describe(e, "registry", parse.GetValue(registry)!)}");
                return 1;
            }
            catch (OperationCanceledException)
            {
                error.WriteLine("cancelled: finished shards are kept; run the same command to resume");
                return 130;
            }
        });
        return command;
    }

    /// <summary>The same work on an extractor service: its events printed as they come; null when only a shard ran.</summary>
    private static async Task<ExtractionSummary?> RemoteAsync(
        string address, string? trust, string? token, string teacher, string student, string folder, ExtractionOptions options,
        int? shardIndex, bool consolidateOnly, bool cleanup, Action<ExtractionEvent> report, CancellationToken cancellationToken)
    {
        using var channel = MeshTls.CreateChannel(address, trust, token: MeshCliOptions.TokenFor(address, token));
        var client = new ExtractorService.ExtractorServiceClient(channel);
        var headers = MeshAuth.Headers(token);
        var job = new ExtractionJob { TeacherModel = teacher, StudentModel = student, OutputDir = folder, Options = ExtractionMessages.ToMessage(options) };
        if (consolidateOnly)
        {
            var consolidated = await client.ConsolidateAsync(new ConsolidateRequest { Job = job, Cleanup = cleanup }, headers, cancellationToken: cancellationToken);
            return LoraExtractor.ReadReport(consolidated.ReportJson);
        }

        var request = new ExtractRequest { Job = job, Cleanup = cleanup };
        if (shardIndex is { } index)
            request.ShardIndex = index;
        using var call = client.Extract(request, headers, cancellationToken: cancellationToken);
        ExtractionSummary? summary = null;
        await foreach (var e in call.ResponseStream.ReadAllAsync(cancellationToken))
        {
            if (e.Kind == "consolidated")
                summary = LoraExtractor.ReadReport(e.Result.ReportJson);
            report(new ExtractionEvent(e.Kind, e.Shard, e.Done, e.Total, e.Tensor is null ? null : ExtractionMessages.ToReport(e.Tensor), e.Message));
        }

        return summary;
    }

    /// <summary>Pushes the adapter with its lineage: teacher and base fingerprints, method, options, quality.</summary>
    private static async Task<Artifact> PushAsync(
        string address, string? trust, string? token, string name, string folder, string teacher, string student, ExtractionOptions options,
        ExtractionSummary summary, AdapterEffect? effect, CancellationToken cancellationToken)
    {
        var extracted = summary.Tensors.Where(t => t.Skipped is null).ToList();
        var lineage = new Lineage
        {
            TeacherFingerprints = { SafetensorsCheckpoint.Fingerprint(teacher) },
            Teachers = { Path.GetFullPath(teacher) },
            BaseModel = Path.GetFullPath(student),
            BaseFingerprint = SafetensorsCheckpoint.Fingerprint(student),
            Method = summary.Clusters.Any(c => c.Clustered) ? "moe" : extracted.All(t => t.Projection == "None") ? "lora_extract" : "svd",
            ConfigJson = ExtractionMessages.ToMessage(options).ToString(),
            Metrics =
            {
                ["mean_relative_error"] = extracted.Count == 0 ? 0 : extracted.Average(t => t.RelativeError),
                ["size_ratio"] = summary.SizeRatio,
            },
        };
        if (effect is not null)
        {
            lineage.Metrics["perplexity"] = effect.After.Perplexity;
            lineage.Metrics["perplexity_before"] = effect.Before.Perplexity;
            if (effect.After.KlToTeacher is { } kl)
                lineage.Metrics["kl_to_teacher"] = kl;
            if (effect.Before.KlToTeacher is { } klBefore)
                lineage.Metrics["kl_to_teacher_before"] = klBefore;
        }

        using var channel = MeshTls.CreateChannel(address, trust, token: MeshCliOptions.TokenFor(address, token));
        var client = new RegistryClient(new RegistryService.RegistryServiceClient(channel), MeshAuth.Headers(token));
        return await client.PushAsync(folder, RegistryClient.ManifestOf(folder, name, lineage), cancellationToken: cancellationToken);
    }

    /// <summary><c>q_proj=8,down_proj=32</c> → ranks by key.</summary>
    internal static Dictionary<string, int> ParsePattern(string? text)
    {
        var pattern = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in (text ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = entry.Split('=', 2, StringSplitOptions.TrimEntries);
            if (parts.Length != 2 || parts[0].Length == 0 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < 1)
                throw new ArgumentException($"--rank-pattern entry '{entry}' is not module=rank with rank ≥ 1 (e.g. q_proj=8)");
            pattern[parts[0]] = value;
        }

        return pattern;
    }

    private static void Print(TextWriter output, ExtractionSummary summary, AdapterEffect? effect, string folder)
    {
        output.WriteLine("layer map:");
        foreach (var line in summary.LayerMap)
            output.WriteLine($"  {line}");
        foreach (var cluster in summary.Clusters.Where(c => c.Clustered))
            output.WriteLine($"  experts of student layer {cluster.Layer}: {string.Join(" | ", cluster.Members.Select((m, i) => $"{i} ← {string.Join("+", m)}"))}");
        output.WriteLine("| tensor | shape | source | projection | r | rel. error | vs optimum |");
        output.WriteLine("|---|---|---|---|---:|---:|---:|");
        foreach (var t in summary.Tensors)
        {
            output.WriteLine(t.Skipped is null
                ? $"| {t.Module} | {t.Shape[0]}×{t.Shape[1]} | {t.Source} | {t.Projection} | {t.Rank} | {t.RelativeError:F4} | {(t.ErrorRatio is { } ratio ? $"{ratio:F4}×" : "-")} |"
                : $"| {t.Module} | {t.Shape[0]}×{t.Shape[1]} | {t.Source} | skipped: {t.Skipped} | 0 | - | - |");
        }

        output.WriteLine($"adapter: {summary.AdapterParameters:N0} parameters = {summary.SizeRatio:P2} of the {summary.DenseParameters:N0} dense weights it adapts; {summary.NotCarried.Count} tensors not carried (see {LoraExtractor.ReportFileName})");
        if (summary.SizeRatio > 0.5)
            output.WriteLine($"note: at {summary.SizeRatio:P0} of the dense weights the adapter saves little over shipping the weights themselves; a lower --rank (or --rank-pattern) keeps most of the change for a fraction of the size");
        if (effect is not null)
        {
            output.WriteLine("| student | perplexity | KL to teacher | top-1 agreement |");
            output.WriteLine("|---|---:|---:|---:|");
            output.WriteLine($"| without adapter | {effect.Before.Perplexity:F3} | {effect.Before.KlToTeacher:F4} | {effect.Before.Top1Agreement:P1} |");
            output.WriteLine($"| with adapter | {effect.After.Perplexity:F3} | {effect.After.KlToTeacher:F4} | {effect.After.Top1Agreement:P1} |");
        }

        output.WriteLine($"wrote {folder}");
    }
}
