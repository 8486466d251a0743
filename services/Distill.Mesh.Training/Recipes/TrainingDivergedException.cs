namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// A step's loss or gradient norm became NaN or infinite. Nothing of that step was applied; the
/// message names the step and the last good checkpoint (which a fork with a lower learning rate
/// or clipping can continue from).
/// </summary>
public sealed class TrainingDivergedException(long step, double loss, double gradNorm, string? checkpoint = null)
    : Exception($"training diverged at step {step}: the loss is {loss} and the gradient norm {gradNorm}; nothing of step {step} was applied. " +
        (checkpoint is null ? "There is no checkpoint to continue from. " : $"The last good checkpoint is {checkpoint} (continue from it with `distill train ... --fork DIR` and another config). ") +
        "Lower training.optimizer.lr, set training.max_grad_norm, or check the data and the teacher for NaN.")
{
    public long Step { get; } = step;

    /// <summary>The same failure, naming the checkpoint it leaves.</summary>
    public TrainingDivergedException WithCheckpoint(string? path) => new(Step, loss, gradNorm, path);
}
