using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Recipes;
using Parquet.Serialization;

namespace Distill.Mesh.Training.Tests.Datasets;

public sealed partial class DatasetStreamTests : IDisposable
{
    private readonly TempFolder _dir = new();
    private readonly TextTokenizer _tokenizer;

    public DatasetStreamTests()
    {
        ByteTokenizerBuilder.Write(_dir.Combine("tokenizer"));
        _tokenizer = TokenizerLoader.Load(_dir.Combine("tokenizer"));
    }

    [GeneratedRegex(@"(?<source>[a-z]+)-(?<row>\d+)")]
    private static partial Regex Tag();

    /// <summary>A JSONL file of text rows tagged "name-i"; blank lines between some rows keep line numbers honest.</summary>
    private string Lines(string name, int rows)
    {
        var path = _dir.Combine($"{name}.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, rows).SelectMany(i => i % 7 == 3 ? ["", $"{{\"text\": \"{name}-{i}\"}}"] : new[] { $"{{\"text\": \"{name}-{i}\"}}" }));
        return path;
    }

    private TrainConfig Config(IEnumerable<(string Path, double Weight)> sources, int buffer = 16, double evalFraction = 0, bool packing = false) => new()
    {
        Seed = 11,
        Dataset = new DatasetConfig
        {
            Sources = sources.Select(s => new DatasetSourceConfig { Path = s.Path, Weight = s.Weight }).ToList(),
            MaxLength = 24,
            EvalFraction = evalFraction,
            ShuffleBuffer = buffer,
            Packing = packing,
        },
        Training = new TrainingConfig { MaxSteps = 10, BatchSize = 2 },
    };

    private DatasetStream Open(TrainConfig config) => DatasetStream.Open(config, _tokenizer, _tokenizer.VocabularySize);

    private List<string> Texts(DatasetStream stream, int count) =>
        Enumerable.Range(0, count).Select(_ => _tokenizer.Decode(stream.Next().InputIds, skipSpecialTokens: true)).ToList();

    [Fact]
    public void A_mixture_draws_each_file_in_proportion_to_its_weight()
    {
        var config = Config([(Lines("alpha", 400), 6), (Lines("beta", 300), 3), (Lines("gamma", 50), 1)]);
        const int draws = 6000;

        var counts = Texts(Open(config), draws).GroupBy(t => Tag().Match(t).Groups["source"].Value).ToDictionary(g => g.Key, g => g.Count());

        foreach (var (name, share) in new[] { ("alpha", 0.6), ("beta", 0.3), ("gamma", 0.1) })
        {
            // Binomial: 4.5 standard deviations (a false failure about once in 150,000 seeds).
            var sigma = Math.Sqrt(draws * share * (1 - share));
            Assert.InRange(counts[name], draws * share - 4.5 * sigma, draws * share + 4.5 * sigma);
        }
    }

    [Fact]
    public void Each_epoch_of_a_file_visits_every_row_once_shuffled_within_windows()
    {
        var config = Config([(Lines("delta", 100), 1)], buffer: 16);

        var texts = Texts(Open(config), 300);

        for (var epoch = 0; epoch < 3; epoch++)
        {
            var rows = texts.Skip(epoch * 100).Take(100).Select(t => int.Parse(Tag().Match(t).Groups["row"].Value)).ToList();
            Assert.Equal(Enumerable.Range(0, 100), rows.Order());
            // Windows of 16 rows: row r is served within its window, never before an earlier window's rows.
            for (var i = 0; i < rows.Count; i++)
                Assert.Equal(i / 16, rows[i] / 16);
        }

        Assert.NotEqual(Enumerable.Range(0, 100), texts.Take(100).Select(t => int.Parse(Tag().Match(t).Groups["row"].Value)));
        Assert.NotEqual(texts.Take(100), texts.Skip(100).Take(100));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_saved_state_resumes_at_the_exact_next_example(bool packing)
    {
        var parquet = _dir.Combine("eps.parquet");
        await ParquetSerializer.SerializeAsync(Enumerable.Range(0, 90).Select(i => new TextRow { Text = $"eps-{i}" }), parquet,
            new Parquet.ParquetOptions { RowGroupSize = 20 });
        var config = Config([(Lines("alpha", 70), 2), (parquet, 1), (Lines("beta", 45), 1)], buffer: 9, evalFraction: 0.1, packing: packing);

        var straight = Texts(Open(config), 240);
        var first = Open(config);
        var head = Texts(first, 97);
        // The state goes through its JSON text, as a checkpoint stores it.
        var saved = JsonNode.Parse(first.SaveState().ToJsonString())!.AsObject();
        var resumed = Open(config);
        resumed.Restore(saved);
        var tail = Texts(resumed, 143);

        Assert.Equal(straight, head.Concat(tail));
        if (packing)
            Assert.Contains(straight, t => Tag().Matches(t).Count > 1);
    }

    [Fact]
    public void Held_out_rows_are_never_trained_on_and_the_eval_set_is_shared_by_weight()
    {
        var config = Config([(Lines("alpha", 600), 3), (Lines("beta", 400), 1)], evalFraction: 0.1);
        config.Dataset.EvalMaxExamples = 40;

        var stream = Open(config);
        var eval = stream.Eval.Select(e => _tokenizer.Decode(e.InputIds, skipSpecialTokens: true)).ToList();
        var trained = Texts(stream, 3000).ToHashSet();

        Assert.Equal(30, eval.Count(t => t.StartsWith("alpha-", StringComparison.Ordinal)));
        Assert.Equal(10, eval.Count(t => t.StartsWith("beta-", StringComparison.Ordinal)));
        Assert.Empty(eval.Intersect(trained));
        // About a tenth of the 1000 rows is held out: 4.5 standard deviations of a binomial(1000, 0.1).
        Assert.InRange(1000 - trained.Count, 100 - 4.5 * Math.Sqrt(90), 100 + 4.5 * Math.Sqrt(90));
    }

    [Fact]
    public void A_file_changed_since_the_checkpoint_is_refused_by_name()
    {
        var path = Lines("alpha", 50);
        var config = Config([(path, 1)]);
        var stream = Open(config);
        Texts(stream, 5);
        var saved = stream.SaveState();

        File.AppendAllLines(path, ["{\"text\": \"alpha-50\"}"]);
        var error = Assert.Throws<DatasetFormatException>(() => Open(config).Restore(saved));

        Assert.Contains(path, error.Message);
        Assert.Contains("changed since the checkpoint", error.Message);

        // A copy (a new modification time, the same bytes) is the same file; a damaged position is named.
        File.WriteAllLines(path, File.ReadAllLines(path).SkipLast(1));
        Open(config).Restore(saved);
        string Refusal(Action<JsonObject> damage)
        {
            var copy = saved.DeepClone().AsObject();
            damage(copy);
            return Assert.Throws<DatasetFormatException>(() => Open(config).Restore(copy)).Message;
        }

        Assert.Contains("data position is damaged", Refusal(s => s["sources"]![0]!["offset"] = -4));
        Assert.Contains("data position is damaged", Refusal(s => s["sources"]![0]!["offset"] = 3));
        Assert.Contains("data position is damaged", Refusal(s => s["sources"]![0]!["position"] = 1_000_000));
        Assert.Contains("data position is damaged", Refusal(s => s["version"] = "1"));
        // Settings the order depends on changed (a fork may change keys): refused, not resumed somewhere meaningless.
        var reshuffled = Config([(path, 1)], buffer: 7);
        Assert.Contains("other data-order settings", Assert.Throws<DatasetFormatException>(() => Open(reshuffled).Restore(saved)).Message);
        // An edit that keeps the size is seen too.
        File.WriteAllText(path, File.ReadAllText(path).Replace("alpha-7\"", "alpha-8\""));
        Assert.Contains("changed since the checkpoint", Assert.Throws<DatasetFormatException>(() => Open(config).Restore(saved)).Message);
    }

    [Fact]
    public void A_row_that_is_not_utf8_or_not_json_is_named_with_its_line()
    {
        var path = _dir.Combine("bad.jsonl");
        File.WriteAllBytes(path, [.. "{\"text\": \"fine\"}\n"u8, .. "{\"text\": \"Q\"}\n"u8.ToArray().Select(b => b == (byte)'Q' ? (byte)0xFF : b), .. "{\"text\": \n"u8]);
        var reader = RowReader.Open(path);

        var utf8 = Assert.Throws<DatasetFormatException>(() => reader.Read(reader.Start, 10));
        var json = Assert.Throws<DatasetFormatException>(() => reader.Record(new RawRow(3, "{\"text\": ", null)));

        Assert.Equal($"{path}: line 2: not UTF-8 (byte 10 of the line)", utf8.Message);
        Assert.StartsWith($"{path}: line 3: not valid JSON at byte 9 of the row (", json.Message);
        Assert.DoesNotContain("LineNumber", json.Message);
    }

    [Fact]
    public void A_file_whose_rows_are_all_held_out_is_named()
    {
        var config = Config([(Lines("alpha", 3), 1)], evalFraction: 0.9);
        config.Seed = Enumerable.Range(0, 10_000).First(seed =>
            Enumerable.Range(1, 3).All(row => DatasetStream.Unit(DatasetStream.Mix(seed, 1_000, row)) < 0.9));

        var error = Assert.Throws<DatasetFormatException>(() => Open(config).Next());

        Assert.Contains("no training rows", error.Message);
    }

    [Fact]
    public void Json_lines_keep_their_line_numbers_and_content_across_read_buffers()
    {
        // Lines of ~40 KB cross the reader's 64 KiB buffer; CRLF endings, a BOM and blank lines.
        var path = _dir.Combine("wide.jsonl");
        var texts = Enumerable.Range(0, 9).Select(i => new string((char)('a' + i), 40_000 + i)).ToList();
        var body = string.Join("\r\n", texts.Select((t, i) => i == 4 ? $"\r\n{{\"text\": \"{t}\"}}" : $"{{\"text\": \"{t}\"}}"));
        File.WriteAllText(path, body, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: true));
        var reader = RowReader.Open(path);

        var (first, next) = reader.Read(reader.Start, 4);
        var (rest, end) = reader.Read(next, 100);
        var (none, after) = reader.Read(end, 100);

        var rows = first.Concat(rest).Select(reader.Record).ToList();
        Assert.Equal(texts, rows.Select(r => r.Fields["text"]!.GetValue<string>()));
        Assert.Equal(new[] { 1, 2, 3, 4, 6, 7, 8, 9, 10 }.Select(n => $"line {n}"), rows.Select(r => r.Location));
        Assert.Empty(none);
        Assert.Equal(end, after);
        Assert.Equal(new FileInfo(path).Length, end.Offset);
    }

    [Fact]
    public async Task Columns_map_other_field_names_in_streams_and_in_memory()
    {
        File.WriteAllLines(_dir.Combine("named.jsonl"), Enumerable.Range(0, 30).Select(i => $"{{\"prompt\": \"q{i}?\", \"completion\": \" a{i}\"}}"));
        File.WriteAllLines(_dir.Combine("other.jsonl"), Enumerable.Range(0, 30).Select(i => $"{{\"question\": \"q{i}?\", \"answer\": \" a{i}\", \"prompt\": \"ignored\"}}"));
        var columns = new Dictionary<string, string> { ["prompt"] = "question", ["completion"] = "answer" };
        TrainConfig For(string file, bool streaming, Dictionary<string, string>? map = null) => new()
        {
            Seed = 3,
            Dataset = new DatasetConfig { Path = _dir.Combine(file), Streaming = streaming, Columns = map ?? [], EvalFraction = 0, MaxLength = 32 },
            Training = new TrainingConfig { MaxSteps = 4, BatchSize = 2 },
        };

        var expected = Texts(Open(For("named.jsonl", true)), 40);
        var mapped = Texts(Open(For("other.jsonl", true, columns)), 40);
        var (inMemory, _) = await RecipeRun.LoadExamplesAsync(For("other.jsonl", false, columns), _tokenizer, _tokenizer.VocabularySize, default);
        var (named, _) = await RecipeRun.LoadExamplesAsync(For("named.jsonl", false), _tokenizer, _tokenizer.VocabularySize, default);
        var unmapped = Assert.Throws<DatasetFormatException>(() => Open(For("other.jsonl", true, new Dictionary<string, string> { ["text"] = "body" })));

        Assert.Equal(expected, mapped);
        Assert.Equal(named.Select(e => e.InputIds), inMemory.Select(e => e.InputIds));
        Assert.Contains("dataset.columns maps text ← body", unmapped.Message);
    }

    [Fact]
    public void Streamed_micro_batches_keep_the_state_before_each_recent_one()
    {
        var config = Config([(Lines("alpha", 40), 1)]);
        var order = new StreamedDataOrder(Open(config), batchSize: 3);

        var batches = Enumerable.Range(0, 6).Select(i => order.MicroBatch(i)).ToList();
        var again = new StreamedDataOrder(Open(config), batchSize: 3);
        again.Restore(order.StateAt(4), 4);

        // Reading forward from the start would reach the same examples; a state for another index shows it is what the order continues from.
        var shifted = new StreamedDataOrder(Open(config), batchSize: 3);
        shifted.Restore(order.StateAt(2), 4);

        Assert.Equal(batches[4].Select(e => e.InputIds), again.MicroBatch(4).Select(e => e.InputIds));
        Assert.Equal(batches[2].Select(e => e.InputIds), shifted.MicroBatch(4).Select(e => e.InputIds));
        Assert.Throws<InvalidOperationException>(() => order.MicroBatch(2));
        Assert.Equal(Texts(Open(config), 21).Skip(18), again.MicroBatch(6).Select(e => _tokenizer.Decode(e.InputIds, skipSpecialTokens: true)));
    }

    [Fact]
    public void Config_problems_of_streams_and_mixtures_name_their_keys()
    {
        var config = Config([(Lines("alpha", 5), 0)]);
        config.Dataset.Path = _dir.Combine("alpha.jsonl");
        config.Dataset.Columns = new Dictionary<string, string> { ["question"] = "q", ["prompt"] = "x", ["completion"] = "x" };
        config.Training.MaxSteps = null;
        config.Recipe = "seq_kd";

        var problems = TrainConfigValidator.Problems(config, checkPaths: false);

        Assert.Contains(problems, p => p.StartsWith("dataset.path: ", StringComparison.Ordinal) && p.Contains("both name the data"));
        Assert.Contains(problems, p => p.StartsWith("dataset.sources.0.weight", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("dataset.columns.question: not a layout field", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("dataset.columns: 'x' is mapped to prompt and completion", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("training.max_steps: a mixture", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("dataset: the seq_kd recipe", StringComparison.Ordinal));
    }

    public sealed class TextRow
    {
        [System.Text.Json.Serialization.JsonPropertyName("text")]
        public string Text { get; set; } = "";
    }

    public void Dispose() => _dir.Dispose();
}
