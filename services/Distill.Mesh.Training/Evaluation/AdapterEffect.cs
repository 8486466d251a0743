using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Recipes;
using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Training.Evaluation;

/// <summary>The student measured against its teacher without and with an adapter: did it help.</summary>
/// <param name="Before">Perplexity, KL to the teacher and top-1 agreement of the student alone.</param>
/// <param name="After">The same with the adapter applied.</param>
public sealed record AdapterEffect(EvalResult Before, EvalResult After)
{
    /// <summary>
    /// Evaluates <paramref name="student"/> on <paramref name="datasetPath"/> (tokenized by the
    /// student's tokenizer, which must be the teacher's) without and with <paramref name="adapter"/>.
    /// </summary>
    public static async Task<AdapterEffect> MeasureAsync(string teacher, string student, string adapter, string datasetPath, int maxLength = 1024, CancellationToken cancellationToken = default)
    {
        using var reference = InProcessTeacher.Load(teacher);
        using var model = CausalLanguageModel.FromPretrained(student);
        model.eval();
        var tokenizer = TokenizerLoader.Load(student);
        var vocabulary = TeacherCompatibility.Check(reference.Describe(), tokenizer, model.Config.VocabSize);
        var records = await DatasetFile.ReadAsync(datasetPath, cancellationToken);
        var builder = new ExampleBuilder(tokenizer, DatasetLayouts.Detect(records), new ExampleOptions { MaxLength = maxLength });
        var examples = records.Select(builder.Build).ToList();
        var pad = tokenizer.PadTokenId ?? 0;
        var before = await Evaluator.EvaluateAsync(model, examples, reference, vocabulary, pad, cancellationToken: cancellationToken);
        LoraAdapter.Load(model, adapter);
        var after = await Evaluator.EvaluateAsync(model, examples, reference, vocabulary, pad, cancellationToken: cancellationToken);
        return new AdapterEffect(before, after);
    }
}
