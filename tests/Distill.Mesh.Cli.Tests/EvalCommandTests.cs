using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Evaluation;

namespace Distill.Mesh.Cli.Tests;

public sealed class EvalCommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

    [Fact]
    public async Task Eval_DatasetChoicesAndPrompts_ReportsEachAgreeingWithTheLibrary()
    {
        using (var model = TinyModels.Create("llama", 4))
            TinyModels.SaveWithByteTokenizer(model, _dir.Combine("m"));
        using (var teacher = TinyModels.Create("llama", 5))
            TinyModels.SaveWithByteTokenizer(teacher, _dir.Combine("t"));
        File.WriteAllLines(_dir.Combine("d.jsonl"), ["{\"text\": \"one two three\"}", "{\"text\": \"four five\"}"]);
        File.WriteAllLines(_dir.Combine("c.jsonl"), ["{\"context\": \"the cat\", \"choices\": [\" sat\", \" sits\"], \"gold\": 1}", "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"gold\": 0}"]);
        File.WriteAllLines(_dir.Combine("p.txt"), ["Hello", "World"]);

        var report = await CliRunner.Json("eval", "--model", _dir.Combine("m"), "--teacher", _dir.Combine("t"), "--dataset", _dir.Combine("d.jsonl"),
            "--choices", _dir.Combine("c.jsonl"), "--prompts", _dir.Combine("p.txt"), "--max-new-tokens", "4", "--json");

        Assert.True(report["dataset"]!["perplexity"]!.GetValue<double>() > 1);
        Assert.True(report["dataset"]!["kl_to_teacher"]!.GetValue<double>() > 0);
        using var student = CausalLanguageModel.FromPretrained(_dir.Combine("m"));
        var expected = MultipleChoice.Evaluate(student, TokenizerLoader.Load(_dir.Combine("m")),
            [new ChoiceItem("the cat", [" sat", " sits"], 1), new ChoiceItem("a", [" b", " c"], 0)]);
        Assert.Equal(expected.Accuracy, report["multiple_choice"]!["accuracy"]!.GetValue<double>());
        Assert.Equal(2, report["generations"]!.AsArray().Count);
        Assert.NotNull(report["generations"]![0]!["teacher"]);
    }

    [Fact]
    public async Task Eval_TablesShowTheNumbersOfTheJson()
    {
        using (var model = TinyModels.Create("llama", 4))
            TinyModels.SaveWithByteTokenizer(model, _dir.Combine("m"));
        using (var teacher = TinyModels.Create("llama", 5))
            TinyModels.SaveWithByteTokenizer(teacher, _dir.Combine("t"));
        File.WriteAllLines(_dir.Combine("d.jsonl"), ["{\"text\": \"one two three\"}", "{\"text\": \"four five\"}"]);
        File.WriteAllLines(_dir.Combine("c.jsonl"), ["{\"context\": \"the cat\", \"choices\": [\" sat\", \" sits\"], \"gold\": 1}"]);
        string[] args = ["eval", "--model", _dir.Combine("m"), "--teacher", _dir.Combine("t"), "--dataset", _dir.Combine("d.jsonl"), "--choices", _dir.Combine("c.jsonl")];

        var report = await CliRunner.Json([.. args, "--json"]);
        var (code, table, error) = await CliRunner.Run(args);

        Assert.True(code == 0, error);
        // Each table row is "| name | value |"; its value is the JSON's, at six significant digits.
        var rows = table.Split('\n').Select(l => l.Split('|', StringSplitOptions.TrimEntries)).Where(c => c.Length == 4).DistinctBy(c => c[1]).ToDictionary(c => c[1], c => c[2]);
        foreach (var (part, key) in new[] { ("dataset", "perplexity"), ("dataset", "kl_to_teacher"), ("dataset", "top1_agreement"), ("multiple_choice", "accuracy"), ("multiple_choice", "normalized_accuracy") })
            Assert.Equal(report[part]![key]!.GetValue<double>().ToString("G6", System.Globalization.CultureInfo.InvariantCulture), rows[key]);
        Assert.Equal(report["dataset"]!["tokens"]!.GetValue<long>().ToString(System.Globalization.CultureInfo.InvariantCulture), rows["tokens"]);
        Assert.Equal(report["multiple_choice"]!["items"]!.GetValue<int>().ToString(System.Globalization.CultureInfo.InvariantCulture), rows["items"]);
        Assert.DoesNotContain("{", table);
    }

    [Fact]
    public async Task Eval_NothingToDo_IsAnError()
    {
        using (var model = TinyModels.Create("llama", 4))
            TinyModels.SaveWithByteTokenizer(model, _dir.Combine("m"));

        var (code, _, error) = await CliRunner.Run("eval", "--model", _dir.Combine("m"));

        Assert.Equal(1, code);
        Assert.Contains("give --dataset, --choices and/or --prompts", error);
    }

    public void Dispose() => _dir.Dispose();
}
