using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Recipes;
using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Training.Evaluation;

/// <summary>
/// The evaluate stage: a run's result (a model folder, or a base model with an adapter) on held-out
/// data — the run's own eval split, or another dataset — with the run's teacher for KL and top-1
/// agreement.
/// </summary>
public static class ResultEvaluation
{
    /// <param name="config">The run (dtype, device, dataset settings, seed).</param>
    /// <param name="modelFolder">The model, or the base the adapter applies to.</param>
    /// <param name="adapterFolder">A PEFT adapter to apply, if any.</param>
    /// <param name="datasetPath">A dataset to evaluate on; null: the run's eval split.</param>
    /// <param name="maxExamples">Most examples evaluated.</param>
    /// <param name="teacher">The teacher for KL and agreement, if any.</param>
    /// <param name="denseTeacher">Whether the teacher sends full logits (in process).</param>
    /// <param name="cancellationToken">Cancels teacher calls.</param>
    public static async Task<EvalResult> EvaluateAsync(TrainConfig config, string modelFolder, string? adapterFolder, string? datasetPath, int maxExamples,
        ITeacherSignal? teacher, bool denseTeacher, CancellationToken cancellationToken)
    {
        using var student = CausalLanguageModel.FromPretrained(modelFolder, RecipeRun.DType(config.Student.Dtype), ComputeDevice.Parse(config.Student.Device, "student.device"));
        if (adapterFolder is not null)
            LoraAdapter.Load(student, adapterFolder);
        student.eval();
        var tokenizer = TokenizerLoader.Load(modelFolder);
        var vocabulary = teacher is null ? student.Config.VocabSize : TeacherCompatibility.Check(teacher.Describe(), tokenizer, student.Config.VocabSize);
        IReadOnlyList<TokenizedExample> examples;
        if (datasetPath is null)
        {
            examples = (await RecipeRun.OpenDataAsync(config, tokenizer, vocabulary, cancellationToken)).Eval;
        }
        else
        {
            var records = await DatasetFile.ReadAsync(datasetPath, cancellationToken);
            var builder = new ExampleBuilder(tokenizer, DatasetLayouts.Detect(records), new ExampleOptions
            {
                MaxLength = config.Dataset.MaxLength,
                TrainOnInputs = config.Dataset.TrainOnInputs,
                ChatFormat = TrainingFactory.ChatFormat(config.Dataset.ChatFormat),
            });
            examples = records.Take(maxExamples).Select(builder.Build).Where(e => e.InputIds.Length >= 2).ToList();
        }

        if (examples.Count == 0)
            throw new ConfigException(datasetPath is null ? "evaluate: the run's eval split is empty (dataset.eval_fraction too small for the dataset)" : $"evaluate.dataset '{datasetPath}' has no usable examples");
        return await Evaluator.EvaluateAsync(student, examples.Take(maxExamples).ToList(), teacher, vocabulary, RecipeRun.PaddingId(tokenizer), cancellationToken: cancellationToken, denseTeacher: denseTeacher);
    }
}
