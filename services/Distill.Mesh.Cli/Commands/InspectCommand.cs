using System.CommandLine;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Models;
using TorchSharp;

namespace Distill.Mesh.Cli.Commands;

/// <summary><c>distill inspect --model DIR</c>: architecture, parameter count, dtypes, shards — from headers only.</summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "HF model folder", Required = true };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var command = new Command("inspect", "Describe a model folder without loading its weights") { model, json };
        command.SetAction((parse, output) =>
        {
            var folder = parse.GetValue(model)!;
            var config = ModelConfigs.Load(folder);
            using var checkpoint = SafetensorsCheckpoint.Open(folder);
            var infos = checkpoint.Names.Select(checkpoint.GetInfo).ToList();

            // Build the model on the meta device to check the checkpoint names the way loading will.
            using var skeleton = new CausalLanguageModel(config, device: torch.device("meta"));
            var expected = skeleton.ParameterShapes().ToDictionary(p => p.Name, p => p.Shape);
            var present = infos.ToDictionary(i => i.Name);
            var missing = expected.Keys.Where(k => !present.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
            var unexpected = present.Keys.Where(k => !expected.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
            var misshaped = expected.Where(e => present.TryGetValue(e.Key, out var i) && !i.Shape.SequenceEqual(e.Value)).Select(e => e.Key).ToList();

            var report = new
            {
                ModelType = config.ModelType,
                Architectures = config.Architectures,
                Layers = config.NumHiddenLayers,
                HiddenSize = config.HiddenSize,
                IntermediateSize = config.IntermediateSize,
                AttentionHeads = config.NumAttentionHeads,
                KeyValueHeads = config.KeyValueHeads,
                HeadDim = config.HeadDimension,
                VocabSize = config.VocabSize,
                Experts = config.ExpertCount,
                ExpertsPerToken = config.ExpertsPerToken,
                TieWordEmbeddings = config.TieWordEmbeddings,
                RopeTheta = config.RopeTheta,
                RopeScaling = config.RopeScaling?.Kind,
                Parameters = infos.Sum(i => i.ElementCount),
                Bytes = infos.Sum(i => i.ByteLength),
                Dtypes = infos.GroupBy(i => i.DType.ToString()).ToDictionary(g => g.Key, g => g.Count()),
                Shards = checkpoint.Files.Select(f => new { File = Path.GetFileName(f.Path), Tensors = f.Tensors.Count, Bytes = new FileInfo(f.Path).Length }).ToList(),
                Loadable = missing.Count + unexpected.Count + misshaped.Count == 0,
                MissingKeys = missing,
                UnexpectedKeys = unexpected,
                MisshapedKeys = misshaped,
            };

            if (parse.GetValue(json))
            {
                CommandRunner.WriteJson(output, report);
                return 0;
            }

            var invariant = System.Globalization.CultureInfo.InvariantCulture;
            var fields = new List<(string, string)>
            {
                ("model_type", report.ModelType),
                ("architectures", string.Join(", ", report.Architectures ?? [])),
                ("layers", report.Layers.ToString(invariant)),
                ("hidden_size", report.HiddenSize.ToString(invariant)),
                ("intermediate_size", report.IntermediateSize.ToString(invariant)),
                ("attention_heads", $"{report.AttentionHeads} (kv {report.KeyValueHeads}, head dim {report.HeadDim})"),
                ("vocab_size", report.VocabSize.ToString(invariant)),
            };
            if (report.Experts > 0)
                fields.Add(("experts", $"{report.Experts}, {report.ExpertsPerToken} per token"));
            fields.Add(("parameters", $"{report.Parameters.ToString("N0", invariant)} ({(report.Bytes / 1e6).ToString("F1", invariant)} MB)"));
            fields.Add(("dtypes", string.Join(", ", report.Dtypes.Select(d => $"{d.Key}×{d.Value}"))));
            fields.Add(("tie_word_embeddings", report.TieWordEmbeddings ? "true" : "false"));
            fields.Add(("rope", $"theta {report.RopeTheta.ToString(invariant)}{(report.RopeScaling is null ? "" : $", scaling {report.RopeScaling}")}"));
            Tables.WriteFields(output, folder, fields);
            Tables.Write(output, null, ["shard", "tensors", "MB"],
                report.Shards.Select(shard => (IReadOnlyList<string>)[shard.File, shard.Tensors.ToString(invariant), (shard.Bytes / 1e6).ToString("F1", invariant)]), "tensors", "MB");
            output.WriteLine(report.Loadable
                ? "checkpoint matches the model layout"
                : $"checkpoint does NOT match: missing [{string.Join(", ", missing.Take(5))}] unexpected [{string.Join(", ", unexpected.Take(5))}] misshaped [{string.Join(", ", misshaped.Take(5))}]");
            return report.Loadable ? 0 : 2;
        });
        return command;
    }
}
