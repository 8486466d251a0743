using System.CommandLine;
using System.Text.Json;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Evaluation;
using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill eval</c>: held-out perplexity (and, with a teacher, KL and top-1 agreement) on a
/// dataset; multiple-choice accuracy by log-likelihood (JSONL of context, choices, gold); and
/// side-by-side greedy generations of the model and the teacher for a list of prompts.
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "HF model folder (the student)", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT adapter folder to apply to the model" };
        var teacher = new Option<string?>("--teacher") { Description = "teacher model folder (adds KL and top-1 agreement)" };
        var teacherDevice = new Option<string>("--teacher-device") { Description = "cpu, cuda or cuda:N for the teacher", DefaultValueFactory = _ => "cpu" };
        var teacherDtype = new Option<string>("--teacher-dtype") { Description = "float32 or bfloat16 for the teacher", DefaultValueFactory = _ => "float32" };
        var dataset = new Option<string?>("--dataset") { Description = "JSON/JSONL/Parquet dataset for perplexity" };
        var choices = new Option<string?>("--choices") { Description = "JSONL with {context, choices, gold}" };
        var prompts = new Option<string?>("--prompts") { Description = "text file, one prompt per line, for side-by-side generations" };
        var maxLength = new Option<int>("--max-length") { DefaultValueFactory = _ => 1024 };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => 48 };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var command = new Command("eval", "Evaluate a model: perplexity, teacher KL, multiple-choice accuracy, generations") { model, adapter, teacher, teacherDevice, teacherDtype, dataset, choices, prompts, maxLength, maxNew, json };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            try
            {
                var folder = parse.GetValue(model)!;
                using var student = CausalLanguageModel.FromPretrained(folder);
                if (parse.GetValue(adapter) is { } adapterFolder)
                    LoraAdapter.Load(student, adapterFolder);
                student.eval();
                var tokenizer = TokenizerLoader.Load(folder);
                using var reference = parse.GetValue(teacher) is { } teacherFolder
                    ? InProcessTeacher.Load(teacherFolder, Training.Recipes.RecipeRun.DType(parse.GetValue(teacherDtype)!), ComputeDevice.Parse(parse.GetValue(teacherDevice), "--teacher-device"))
                    : null;
                var vocabulary = reference is null ? student.Config.VocabSize : TeacherCompatibility.Check(reference.Describe(), tokenizer, student.Config.VocabSize);
                var report = new Dictionary<string, object?>();

                if (parse.GetValue(dataset) is { } path)
                {
                    var records = await DatasetFile.ReadAsync(path, cancellationToken);
                    var builder = new ExampleBuilder(tokenizer, DatasetLayouts.Detect(records), new ExampleOptions { MaxLength = parse.GetValue(maxLength) });
                    report["dataset"] = await Evaluator.EvaluateAsync(student, records.Select(builder.Build).ToList(), reference, vocabulary, tokenizer.PadTokenId ?? 0, cancellationToken: cancellationToken);
                }

                if (parse.GetValue(choices) is { } choiceFile)
                    report["multiple_choice"] = MultipleChoice.Evaluate(student, tokenizer, ReadChoices(choiceFile));

                if (parse.GetValue(prompts) is { } promptFile)
                {
                    var options = new GenerationOptions { Greedy = true, MaxNewTokens = parse.GetValue(maxNew), StopTokenIds = GenerationConfig.Load(folder).StopTokens(student.Config) };
                    report["generations"] = File.ReadAllLines(promptFile).Where(l => l.Length > 0).Select(prompt =>
                    {
                        var ids = tokenizer.Encode(prompt, addSpecialTokens: true);
                        var mine = tokenizer.Decode(TextGenerator.Generate(student, [ids], options)[0].Tokens, skipSpecialTokens: true);
                        var theirs = reference is null ? null : tokenizer.Decode(TextGenerator.Generate(reference.Model, [ids], options)[0].Tokens, skipSpecialTokens: true);
                        return new Generation(prompt, mine, theirs);
                    }).ToList();
                }

                if (report.Count == 0)
                    throw new ArgumentException("give --dataset, --choices and/or --prompts");
                if (parse.GetValue(json))
                {
                    CommandRunner.WriteJson(output, report);
                    return 0;
                }

                WriteTables(output, report);
                return 0;
            }
            catch (Exception e) when (e is FileNotFoundException or ArgumentException or DatasetFormatException or IncompatibleTeacherException or AdapterFormatException
                or Modeling.Checkpoints.CheckpointFormatException or Modeling.Models.ModelConfigException or TokenizerFormatException or JsonException)
            {
                parse.InvocationConfiguration.Error.WriteLine($"error: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary>The report as tables: one per part, with the numbers --json prints (six significant digits).</summary>
    private static void WriteTables(TextWriter output, Dictionary<string, object?> report)
    {
        if (report.GetValueOrDefault("dataset") is Training.Recipes.EvalResult eval)
        {
            Tables.Write(output, "held-out dataset", ["metric", "value"],
            [
                ["perplexity", Tables.Number(eval.Perplexity)],
                ["kl_to_teacher", Tables.Number(eval.KlToTeacher)],
                ["top1_agreement", Tables.Number(eval.Top1Agreement)],
                ["tokens", eval.Tokens.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            ], "value");
        }

        if (report.GetValueOrDefault("multiple_choice") is MultipleChoice.Result choice)
        {
            Tables.Write(output, "multiple choice", ["metric", "value"],
            [
                ["accuracy", Tables.Number(choice.Accuracy)],
                ["normalized_accuracy", Tables.Number(choice.NormalizedAccuracy)],
                ["items", choice.Items.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            ], "value");
        }

        if (report.GetValueOrDefault("generations") is IEnumerable<Generation> generations)
            Tables.Write(output, "greedy generations", ["prompt", "model", "teacher"], generations.Select(g => (IReadOnlyList<string>)[g.Prompt, g.Model, g.Teacher ?? "-"]));
    }

    private sealed record Generation(string Prompt, string Model, string? Teacher);

    private static List<ChoiceItem> ReadChoices(string path) =>
        File.ReadLines(path).Select((line, i) => (line, i)).Where(p => p.line.Trim().Length > 0).Select(p =>
        {
            try
            {
                using var doc = JsonDocument.Parse(p.line);
                var root = doc.RootElement;
                return new ChoiceItem(root.GetProperty("context").GetString()!, root.GetProperty("choices").EnumerateArray().Select(c => c.GetString()!).ToList(), root.GetProperty("gold").GetInt32());
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new ArgumentException($"{path}: line {p.i + 1}: expected {{\"context\": str, \"choices\": [str], \"gold\": int}} ({e.Message})", e);
            }
        }).ToList();
}
