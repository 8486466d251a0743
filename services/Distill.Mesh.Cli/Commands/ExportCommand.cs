using System.CommandLine;
using System.Globalization;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Checkpoints;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill export --adapter DIR|RUN --out DIR</c>: a LoRA adapter merged into its base model,
/// written as a plain HF model folder (sharded safetensors, config.json, tokenizer), checked
/// against the adapted model's logits before it is put in place.
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var adapter = new Option<string>("--adapter") { Description = "PEFT adapter folder, or a LoRA training run's output folder (its adapter/)", Required = true };
        var baseModel = new Option<string?>("--base") { Description = "base model folder (default: adapter_config.json's base_model_name_or_path)" };
        var outFolder = new Option<string>("--out") { Description = "HF model folder to write (must not exist or be empty)", Required = true };
        var dtype = new Option<string?>("--dtype") { Description = "float32, bfloat16 or float16 (default: the base's torch_dtype)" };
        var shardSize = new Option<string>("--max-shard-size") { Description = "split the weights into shards above this size (5GB, 500MB, 2GiB, bytes)", DefaultValueFactory = _ => "5GB" };
        var noCheck = new Option<bool>("--no-check") { Description = "skip comparing the merged model's logits with the adapted model's" };
        var force = new Option<bool>("--force") { Description = "replace a destination that holds files" };
        var json = new Option<bool>("--json") { Description = "print the report as JSON" };
        var command = new Command("export", "Merge a LoRA adapter into its base model and write an HF model folder (sharded safetensors, chosen dtype, tokenizer)")
        {
            adapter, baseModel, outFolder, dtype, shardSize, noCheck, force, json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var (output, error) = (parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error);
            try
            {
                // Every argument is checked before anything is read or written.
                var maxShardBytes = ByteSizes.Parse(parse.GetValue(shardSize)!, "--max-shard-size");
                var chosen = parse.GetValue(dtype) is { } name
                    ? MergedModelExporter.DTypes.TryGetValue(name.ToLowerInvariant(), out var d) ? d : throw new ArgumentException($"--dtype must be float32, bfloat16 or float16 (got '{name}')")
                    : (TorchSharp.torch.ScalarType?)null;
                var options = new MergedExportOptions
                {
                    Source = AdapterSource.Resolve(parse.GetValue(adapter)!, parse.GetValue(baseModel)),
                    Destination = parse.GetValue(outFolder)!,
                    DType = chosen,
                    MaxShardBytes = maxShardBytes,
                    Check = !parse.GetValue(noCheck),
                    Replace = parse.GetValue(force),
                };
                var report = await Task.Run(() => MergedModelExporter.Export(options, error.WriteLine, cancellationToken), cancellationToken);
                if (parse.GetValue(json))
                    CommandRunner.WriteJson(output, report);
                else
                    WriteSummary(output, report);
                return 0;
            }
            catch (Exception e) when (CommandRunner.IsUserError(e) || e is MergeCheckException)
            {
                error.WriteLine($"error: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    private static void WriteSummary(TextWriter output, MergedExportReport report)
    {
        var invariant = CultureInfo.InvariantCulture;
        output.WriteLine($"merged {report.MergedModules.Count} modules of {report.AdapterFolder} into {report.BaseFolder}");
        output.WriteLine($"wrote {report.Destination}: {report.DType}, {report.WeightBytes.ToString("N0", invariant)} bytes in {report.WeightFiles.Count} file(s){(report.WeightFiles.Count > 1 ? $" + {SafetensorsCheckpoint.IndexFileName}" : "")}, "
            + $"{(report.CopiedFiles.Count == 0 ? "no tokenizer files" : string.Join(", ", report.CopiedFiles.Select(f => $"{f.Name} ({f.From})")))}, in {report.Seconds.ToString("F1", invariant)} s");
        if (report.Check is { } check)
        {
            output.WriteLine(string.Create(invariant, $"check ({check.Sequences} sequences × {check.Tokens} tokens, logit scale max(1, max |logit|) = {check.Scale:G4}): max |merged − adapted| {check.MergeMaxAbsDiff:G3} in float32 (≤ {check.MergeTolerance:G3}), "
                + $"{check.ExportMaxAbsDiff:G3} as written in {report.DType} (≤ {check.ExportTolerance:G3})"));
        }
        else
        {
            output.WriteLine("check skipped (--no-check)");
        }
    }
}
