using System.CommandLine;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Specs.Storage;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill bench data</c>: a JSONL dataset read as a stream, as training reads it (windows,
/// shuffle, tokenising, packing off), with the process's memory sampled every tenth of the file,
/// next to the memory of reading the file's head whole (what a non-streamed run does) in the same run.
/// </summary>
internal static class DataBenchCommand
{
    public static Command Create()
    {
        var dataset = new Option<string>("--dataset") { Description = "JSONL file to stream (written first when --synthetic-gb is given and it is missing)", Required = true };
        var tokenizer = new Option<string>("--tokenizer") { Description = "tokenizer folder (tokenizer.json)", Required = true };
        var synthetic = new Option<double>("--synthetic-gb") { Description = "write a synthetic chat dataset of this many GB to --dataset when the file is missing" };
        var limit = new Option<double>("--read-gb") { Description = "stop after this many GB of the file (default: the whole file)" };
        var headMb = new Option<int>("--whole-mb") { Description = "MB of the file's head also read whole, for the comparison (0: skip)", DefaultValueFactory = _ => 64 };
        var maxLength = new Option<int>("--max-length") { DefaultValueFactory = _ => 512 };
        var command = new Command("data", "Streamed dataset: memory while reading a large JSONL, next to reading its head whole") { dataset, tokenizer, synthetic, limit, headMb, maxLength };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var path = Path.GetFullPath(parse.GetValue(dataset)!);
            if (!File.Exists(path))
            {
                if (!(parse.GetValue(synthetic) > 0))
                    throw new ArgumentException($"--dataset: no file at '{path}' (give --synthetic-gb to write one)");
                WriteSynthetic(path, (long)(parse.GetValue(synthetic) * 1e9), output, cancellationToken);
            }

            var text = TokenizerLoader.Load(parse.GetValue(tokenizer)!);
            var length = new FileInfo(path).Length;
            var stopAt = parse.GetValue(limit) is > 0 and var gb ? Math.Min(length, (long)(gb * 1e9)) : length;
            var config = new TrainConfig
            {
                Dataset = new DatasetConfig { Path = path, Streaming = true, MaxLength = parse.GetValue(maxLength), EvalFraction = 0.001, EvalMaxExamples = 64 },
                Training = new TrainingConfig { MaxSteps = 1 },
            };
            output.WriteLine($"{path}: {length / 1e9:F2} GB; streaming {stopAt / 1e9:F2} GB of it; tokenizer {text.VocabularySize} ids; max_length {config.Dataset.MaxLength}");
            output.WriteLine("| read | GB | examples | tokens | s | examples/s | MB/s | working set MB | managed heap MB |");
            output.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            var watch = Stopwatch.StartNew();
            var stream = DatasetStream.Open(config, text, text.VocabularySize);
            long examples = 0, tokens = 0, peak = 0;
            var next = 0.1;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                tokens += stream.Next().InputIds.Length;
                examples++;
                if (examples % 256 != 0)
                    continue;
                var at = Position(stream);
                peak = Math.Max(peak, Environment.WorkingSet);
                if (at.Epoch == 0 && at.Offset < next * stopAt)
                    continue;
                var read = at.Epoch > 0 ? stopAt : at.Offset;
                var seconds = watch.Elapsed.TotalSeconds;
                output.WriteLine($"| {(double)read / stopAt:P0} | {read / 1e9:F2} | {examples:N0} | {tokens:N0} | {seconds:F0} | {examples / seconds:N0} | {read / 1e6 / seconds:F1} | {Environment.WorkingSet / 1e6:F0} | {GC.GetTotalMemory(false) / 1e6:F0} |");
                if (read >= stopAt)
                    break;
                next = Math.Floor(read * 10.0 / stopAt + 1) / 10;
            }

            output.WriteLine($"streamed: peak working set {peak / 1e6:F0} MB for {stopAt / 1e9:F2} GB read");
            if (parse.GetValue(headMb) is > 0 and var megabytes)
                await WholeComparisonAsync(path, megabytes, config, text, output, cancellationToken);
            return 0;
        });
        return command;
    }

    /// <summary>Where the stream's one file stands (from its saved state).</summary>
    private static (int Epoch, long Offset) Position(DatasetStream stream)
    {
        var source = stream.SaveState()["sources"]![0]!;
        return (source["epoch"]!.GetValue<int>(), source["offset"]!.GetValue<long>());
    }

    /// <summary>The file's first <paramref name="megabytes"/> MB read whole, as a non-streamed run reads its dataset.</summary>
    private static async Task WholeComparisonAsync(string path, int megabytes, TrainConfig streamed, TextTokenizer tokenizer, TextWriter output, CancellationToken cancellationToken)
    {
        var head = Path.Combine(Path.GetTempPath(), $"distill-bench-head-{Guid.NewGuid():N}.jsonl");
        try
        {
            using (var reader = new StreamReader(path))
            using (var writer = new StreamWriter(head))
            {
                long written = 0;
                while (written < megabytes * 1_000_000L && await reader.ReadLineAsync(cancellationToken) is { } line)
                {
                    writer.WriteLine(line);
                    written += Encoding.UTF8.GetByteCount(line) + 1;
                }
            }

            GC.Collect();
            var before = Environment.WorkingSet;
            var config = new TrainConfig { Dataset = new DatasetConfig { Path = head, MaxLength = streamed.Dataset.MaxLength, EvalFraction = 0.001 } };
            var watch = Stopwatch.StartNew();
            var (train, _) = await RecipeRun.LoadExamplesAsync(config, tokenizer, tokenizer.VocabularySize, cancellationToken);
            var held = GC.GetTotalMemory(false);
            output.WriteLine($"read whole: the first {megabytes} MB ({train.Count:N0} examples) in {watch.Elapsed.TotalSeconds:F0} s; working set {before / 1e6:F0} → {Environment.WorkingSet / 1e6:F0} MB, managed heap {held / 1e6:F0} MB " +
                $"({held / (megabytes * 1e6):F1}× the bytes read; a whole-file read of {new FileInfo(path).Length / 1e9:F1} GB would need about {held / (megabytes * 1e6) * new FileInfo(path).Length / 1e9:F0} GB)");
            GC.KeepAlive(train);
        }
        finally
        {
            File.Delete(head);
        }
    }

    /// <summary>Chat rows of varied length from a fixed vocabulary (deterministic), written to a temporary file and renamed.</summary>
    private static void WriteSynthetic(string path, long bytes, TextWriter output, CancellationToken cancellationToken)
    {
        string[] words = ["the", "model", "teacher", "student", "learns", "from", "a", "distribution", "over", "tokens", "and", "loss", "falls", "when", "signal", "is", "dense",
            "sparse", "kernel", "matrix", "gradient", "step", "batch", "sequence", "attention", "layer", "weights", "of", "in", "to"];
        output.WriteLine($"writing {bytes / 1e9:F1} GB of synthetic chat rows to {path} …");
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, new UTF8Encoding(false), 1 << 20, leaveOpen: true);
            var random = new Random(7);
            var sentence = new StringBuilder();
            long written = 0;
            for (var row = 0L; written < bytes; row++)
            {
                if (row % 100_000 == 0)
                    cancellationToken.ThrowIfCancellationRequested();
                string Sentence(int count)
                {
                    sentence.Clear();
                    for (var i = 0; i < count; i++)
                        sentence.Append(i == 0 ? "" : " ").Append(words[random.Next(words.Length)]);
                    return sentence.ToString();
                }

                var line = JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = $"Question {row}: {Sentence(random.Next(8, 40))}?" }, new { role = "assistant", content = Sentence(random.Next(20, 200)) + "." } } });
                writer.WriteLine(line);
                written += line.Length + 1;
            }
        });
    }
}
