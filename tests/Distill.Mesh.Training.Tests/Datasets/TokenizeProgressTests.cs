using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Training.Tests.Datasets;

public sealed class TokenizeProgressTests : IDisposable
{
    private readonly TempFolder _dir = new();

    [Fact]
    public async Task A_large_dataset_reports_its_tokenising_every_tenth_and_a_small_one_stays_quiet()
    {
        ByteTokenizerBuilder.Write(_dir.Path);
        var tokenizer = TokenizerLoader.Load(_dir.Path);
        var rows = RecipeRun.TokenizeReportRows + 10;
        File.WriteAllLines(_dir.Combine("big.jsonl"), Enumerable.Range(0, rows).Select(i => $"{{\"text\": \"row {i}\"}}"));
        File.WriteAllLines(_dir.Combine("small.jsonl"), Enumerable.Range(0, 100).Select(i => $"{{\"text\": \"row {i}\"}}"));
        TrainConfig Config(string file) => new() { Dataset = new DatasetConfig { Path = _dir.Combine(file), MaxLength = 32, EvalFraction = 0 } };

        var notes = new List<TrainEvent>();
        var quiet = new List<TrainEvent>();
        var (train, _) = await RecipeRun.LoadExamplesAsync(Config("big.jsonl"), tokenizer, tokenizer.VocabularySize, default, new Collect(notes));
        await RecipeRun.LoadExamplesAsync(Config("small.jsonl"), tokenizer, tokenizer.VocabularySize, default, new Collect(quiet));

        Assert.Equal(rows, train.Count);
        Assert.Equal(10, notes.Count);
        Assert.All(notes, n => Assert.Equal((0L, 0L), (n.Step, n.TotalSteps)));
        Assert.StartsWith($"tokenised {rows - rows % (rows / 10):N0} of {rows:N0} rows (", notes[^1].Message);
        Assert.Contains("rows/s, ETA ", notes[0].Message);
        // The same progress as a count, for a display's bar.
        Assert.Equal(new PreparationProgress("tokenising", rows / 10, rows, "rows"), notes[0].Preparing);
        Assert.Equal(notes[^1].Message![10..].Split(' ')[0], notes[^1].Preparing!.Done.ToString("N0"));
        Assert.Empty(quiet);
    }

    private sealed class Collect(List<TrainEvent> events) : IProgress<TrainEvent>
    {
        public void Report(TrainEvent value) => events.Add(value);
    }

    public void Dispose() => _dir.Dispose();
}
