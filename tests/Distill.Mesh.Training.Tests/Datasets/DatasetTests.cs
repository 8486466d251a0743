using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Datasets;
using Parquet.Serialization;

namespace Distill.Mesh.Training.Tests.Datasets;

public class DatasetTests
{
    private static readonly Lazy<TextTokenizer> Qwen = new(() => TokenizerLoader.Load(SharedData.PathOf("tokenizers", "qwen3")));

    [Theory]
    [InlineData("torchtune/alpaca_tiny.json", DatasetLayout.Alpaca, 100)]
    [InlineData("torchtune/instruct_tiny.json", DatasetLayout.Alpaca, -1)]
    [InlineData("torchtune/chat_tiny.json", DatasetLayout.ShareGpt, -1)]
    [InlineData("llama-factory/alpaca_en_demo.json", DatasetLayout.Alpaca, 999)]
    [InlineData("llama-factory/identity.json", DatasetLayout.Alpaca, 91)]
    [InlineData("llama-factory/glaive_toolcall_en_demo.json", DatasetLayout.ShareGpt, 300)]
    [InlineData("llama-factory/c4_demo.jsonl", DatasetLayout.Text, 300)]
    [InlineData("axolotl/conversation.json", DatasetLayout.ShareGpt, 1)]
    [InlineData("axolotl/alpaca.json", DatasetLayout.Alpaca, -1)]
    public async Task SharedSample_IsDetectedAndEveryRowTokenizes(string file, DatasetLayout layout, int rows)
    {
        var records = await DatasetFile.ReadAsync(SharedData.PathOf("datasets", file));

        Assert.Equal(layout, DatasetLayouts.Detect(records));
        if (rows > 0)
            Assert.Equal(rows, records.Count);
        var builder = new ExampleBuilder(Qwen.Value, layout, new ExampleOptions { MaxLength = 16384 }); // no truncation here
        foreach (var record in records)
        {
            var example = builder.Build(record);
            Assert.Equal(example.InputIds.Length, example.Labels.Length);
            Assert.True(example.TrainedTokens > 0, $"{record.Location} trains on nothing");
            if (layout == DatasetLayout.Text)
                Assert.Equal(example.InputIds.Select(i => (long)i), example.Labels);
            else
                Assert.Contains(TokenizedExample.IgnoreIndex, example.Labels);
        }
    }

    [Fact]
    public async Task Alpaca_LossOnlyOnTheResponse_UnlessTrainingOnInputs()
    {
        var records = await DatasetFile.ReadAsync(SharedData.PathOf("datasets", "axolotl", "alpaca.json"));
        var tokenizer = Qwen.Value;

        var example = new ExampleBuilder(tokenizer, DatasetLayout.Alpaca, new ExampleOptions()).Build(records[0]);
        var everything = new ExampleBuilder(tokenizer, DatasetLayout.Alpaca, new ExampleOptions { TrainOnInputs = true }).Build(records[0]);

        // Qwen3's own template: a final assistant turn carries an empty think block; the mask is the reply and <|im_end|>.
        var trained = example.Labels.Where(l => l != TokenizedExample.IgnoreIndex).Select(l => (int)l).ToList();
        Assert.Equal("<think>\n\n</think>\n\n['world', 'Hello']<|im_end|>", tokenizer.Decode(trained));
        var firstTrained = Array.FindIndex(example.Labels, l => l != TokenizedExample.IgnoreIndex);
        var prompt = tokenizer.Decode(example.InputIds.Take(firstTrained));
        Assert.Equal("<|im_start|>user\nYou will be given a series of words. Output these words in reverse order, with each word on its own line.\n\nWords: ['Hello', 'world'].<|im_end|>\n<|im_start|>assistant\n", prompt);
        Assert.Equal("\n", tokenizer.Decode(example.InputIds.Skip(firstTrained + trained.Count)));
        Assert.Equal(everything.InputIds.Select(i => (long)i), everything.Labels);
    }

    [Fact]
    public async Task PromptCompletionAndTruncation()
    {
        using var dir = new TempFolder();
        var path = dir.Combine("pc.jsonl");
        File.WriteAllText(path, "{\"prompt\": \"2 + 2 =\", \"completion\": \" 4\"}\n\n{\"prompt\": \"A long prompt that will certainly be cut before its completion\", \"completion\": \" done\"}\n");
        var tokenizer = TokenizerLoader.Load(SharedData.PathOf("tokenizers", "mistral-v0.1"));
        var records = await DatasetFile.ReadAsync(path);

        var builder = new ExampleBuilder(tokenizer, DatasetLayouts.Detect(records), new ExampleOptions { MaxLength = 12 });
        var first = builder.Build(records[0]);
        var second = builder.Build(records[1]);

        Assert.Equal(DatasetLayout.PromptCompletion, builder.Layout);
        Assert.Equal("line 3", records[1].Location);
        Assert.Equal(1, first.InputIds[0]); // BOS
        Assert.Equal(2, first.InputIds[^1]); // EOS, trained
        Assert.Equal(2, first.Labels[^1]);
        Assert.Equal(TokenizedExample.IgnoreIndex, first.Labels[0]);
        Assert.Equal(12, second.InputIds.Length);
        Assert.Equal(0, second.TrainedTokens);
    }

    [Fact]
    public async Task Parquet_ReadsLikeTheSameRowsInJson()
    {
        using var dir = new TempFolder();
        var rows = new[]
        {
            new AlpacaRow { Instruction = "Add the numbers.", Input = "2 and 3", Output = "5" },
            new AlpacaRow { Instruction = "Say hi.", Input = "", Output = "Hi!" },
        };
        await ParquetSerializer.SerializeAsync(rows, dir.Combine("rows.parquet"));
        File.WriteAllText(dir.Combine("rows.json"), System.Text.Json.JsonSerializer.Serialize(rows));

        var fromParquet = await DatasetFile.ReadAsync(dir.Combine("rows.parquet"));
        var fromJson = await DatasetFile.ReadAsync(dir.Combine("rows.json"));

        Assert.Equal(DatasetLayout.Alpaca, DatasetLayouts.Detect(fromParquet));
        var builder = new ExampleBuilder(Qwen.Value, DatasetLayout.Alpaca, new ExampleOptions());
        for (var i = 0; i < rows.Length; i++)
            Assert.Equal(builder.Build(fromJson[i]).InputIds, builder.Build(fromParquet[i]).InputIds);
        Assert.Equal("row 2", fromParquet[1].Location);
    }

    public sealed class AlpacaRow
    {
        [System.Text.Json.Serialization.JsonPropertyName("instruction")]
        public string Instruction { get; set; } = "";

        [System.Text.Json.Serialization.JsonPropertyName("input")]
        public string Input { get; set; } = "";

        [System.Text.Json.Serialization.JsonPropertyName("output")]
        public string Output { get; set; } = "";
    }

    [Theory]
    [InlineData("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"broken\"\n", "bad.jsonl: line 2: not valid JSON")]
    [InlineData("rows.json", "[{\"instruction\": \"x\", \"input\": \"\"}]", "rows.json: record 1: missing 'output' (or 'response')")]
    [InlineData("share.json", "[{\"conversations\": [{\"from\": \"robot\", \"value\": \"beep\"}]}]", "share.json: record 1: turn 0: unknown speaker 'robot'")]
    [InlineData("chat.json", "[{\"messages\": [{\"role\": \"user\", \"content\": 42}]}]", "chat.json: record 1: 'content' must be a string")]
    [InlineData("prefs.json", "[{\"chosen\": [], \"rejected\": []}]", "no known layout in fields [chosen, rejected]")]
    [InlineData("data.csv", "a,b\n", "unknown dataset extension '.csv'")]
    public async Task BadRows_NameTheFileTheRowAndWhy(string name, string content, string expected)
    {
        using var dir = new TempFolder();
        var path = dir.Combine(name);
        File.WriteAllText(path, content);

        var error = await Assert.ThrowsAsync<DatasetFormatException>(async () =>
        {
            var records = await DatasetFile.ReadAsync(path);
            var builder = new ExampleBuilder(Qwen.Value, DatasetLayouts.Detect(records), new ExampleOptions());
            foreach (var record in records)
                builder.Build(record);
        });

        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void ShuffleAndSplit_AreDeterministicBySeed()
    {
        var items = Enumerable.Range(0, 50).ToList();

        var (train, eval) = Batching.Split(items, 0.1, seed: 3);
        var (trainAgain, evalAgain) = Batching.Split(items, 0.1, seed: 3);
        var (_, evalOther) = Batching.Split(items, 0.1, seed: 4);

        Assert.Equal(45, train.Count);
        Assert.Equal(5, eval.Count);
        Assert.Equal(train, trainAgain);
        Assert.Equal(eval, evalAgain);
        Assert.NotEqual(eval, evalOther);
        Assert.Empty(train.Intersect(eval));
    }

    [Fact]
    public void Collate_PadsRightWithIgnoredLabels()
    {
        TokenizedExample[] examples = [new([5, 6, 7], [-100, 6, 7]), new([8], [8])];

        using var batch = Batching.Collate(examples, padTokenId: 0);

        Assert.Equal(new long[] { 5, 6, 7, 8, 0, 0 }, batch.InputIds.data<long>().ToArray());
        Assert.Equal(new long[] { -100, 6, 7, 8, -100, -100 }, batch.Labels.data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 1, 0, 0 }, batch.AttentionMask.data<long>().ToArray());
        Assert.Equal(2, batch.TrainedTokens);
    }
}
