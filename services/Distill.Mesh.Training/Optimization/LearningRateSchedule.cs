namespace Distill.Mesh.Training.Optimization;

/// <summary>Learning-rate shapes after warmup.</summary>
public enum ScheduleKind
{
    Constant,
    Linear,
    Cosine,
}

/// <summary>
/// Linear warmup from 0 to the peak over <c>warmup</c> steps, then constant, linear decay to 0, or
/// half-cosine decay to <c>min_ratio</c>·peak at the last step. A pure function of the step, so a
/// resumed run needs no schedule state.
/// </summary>
public sealed record LearningRateSchedule(ScheduleKind Kind, double Peak, long TotalSteps, long WarmupSteps, double MinRatio = 0.0)
{
    /// <summary>Warmup given as a share of the total steps.</summary>
    public static long WarmupFromRatio(double ratio, long totalSteps) => (long)Math.Ceiling(ratio * totalSteps);

    /// <summary>The rate for step <paramref name="step"/> (1-based: the step about to be taken).</summary>
    public double At(long step)
    {
        if (WarmupSteps > 0 && step <= WarmupSteps)
            return Peak * step / WarmupSteps;
        if (Kind == ScheduleKind.Constant || TotalSteps <= WarmupSteps)
            return Peak;
        var progress = Math.Clamp((double)(step - WarmupSteps) / (TotalSteps - WarmupSteps), 0, 1);
        var shape = Kind == ScheduleKind.Linear ? 1 - progress : 0.5 * (1 + Math.Cos(Math.PI * progress));
        return Peak * (MinRatio + (1 - MinRatio) * shape);
    }
}
