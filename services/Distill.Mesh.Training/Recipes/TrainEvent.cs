namespace Distill.Mesh.Training.Recipes;

/// <summary>Progress of a run after an optimizer step (what `distill train` and the trainer's Watch stream show).</summary>
public sealed record TrainEvent(
    long Step,
    long TotalSteps,
    double Loss,
    double KdLoss,
    double CeLoss,
    double LearningRate,
    double GradNorm,
    double TokensPerSecond,
    long Tokens,
    EvalResult? Eval = null,
    string? Message = null,
    double StepSeconds = 0,
    double TeacherWaitSeconds = 0,
    PreparationProgress? Preparing = null)
{
    /// <summary>A message before the first step (tokenising, the teacher's generations): no step, no loss.</summary>
    public static TrainEvent Note(string message) => new(0, 0, 0, 0, 0, 0, 0, 0, 0, Message: message);
}

/// <summary>How far a step before training got (tokenising the dataset): a count of a total, so a display can draw it as a bar.</summary>
/// <param name="Phase">What is being done, e.g. "tokenising".</param>
/// <param name="Done">Items done so far.</param>
/// <param name="Total">Items in all.</param>
/// <param name="Unit">What the items are, e.g. "rows".</param>
public sealed record PreparationProgress(string Phase, long Done, long Total, string Unit);

/// <summary>Held-out metrics.</summary>
/// <param name="Perplexity">exp of the mean token cross-entropy on the eval split.</param>
/// <param name="KlToTeacher">Mean forward KL(teacher‖student) per token (T = 1), when there is a teacher.</param>
/// <param name="Top1Agreement">Share of tokens where student and teacher rank the same token first.</param>
/// <param name="Tokens">Tokens evaluated.</param>
public sealed record EvalResult(double Perplexity, double? KlToTeacher, double? Top1Agreement, long Tokens);

/// <summary>What a finished (or interrupted) run produced.</summary>
public sealed record TrainResult(string OutputDir, long Steps, bool Completed, string? ModelPath, string? AdapterPath, EvalResult? FinalEval);
