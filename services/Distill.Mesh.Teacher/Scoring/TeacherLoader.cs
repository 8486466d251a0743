using Distill.Mesh.ServiceDefaults;
using System.Diagnostics;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Training.Recipes;
using Distill.Mesh.Training.Teachers;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Teacher.Scoring;

/// <summary>The one forward pass a teacher runs before it reports ready (tests replace it to hold readiness back).</summary>
public interface ITeacherWarmUp
{
    Task WarmUpAsync(InProcessTeacher teacher, CancellationToken cancellationToken);
}

/// <summary>A short forward pass: the first one pays for kernel selection and allocations, not a client's request.</summary>
public sealed class ForwardWarmUp : ITeacherWarmUp
{
    public Task WarmUpAsync(InProcessTeacher teacher, CancellationToken cancellationToken) => Task.Run(() => teacher.WarmUp(), cancellationToken);
}

/// <summary>
/// Loads Teacher:Model on Teacher:Device in the background once the host starts (liveness answers
/// while it loads), warms it up, then marks the teacher ready. A model that cannot be loaded stops
/// the service with exit code 1: a teacher without a model has nothing to serve.
/// </summary>
public sealed class TeacherLoader(TeacherModel model, ITeacherWarmUp warmUp, IOptions<TeacherOptions> options, JobOutcome outcome, ILogger<TeacherLoader> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        try
        {
            var watch = Stopwatch.StartNew();
            var teacher = model.Supplied ?? await Task.Run(() => Load(settings), stoppingToken);
            var loaded = watch.Elapsed;
            await warmUp.WarmUpAsync(teacher, stoppingToken);
            model.SetReady(teacher);
            TeacherMetrics.Loaded(TeacherMetrics.Label(settings.Model), loaded, watch.Elapsed - loaded);
            logger.LogInformation("Teacher {Model} ready on {Device} ({Dtype}): loaded in {Load:F1} s, warmed up in {WarmUp:F1} s",
                settings.Model, teacher.Model.Device, teacher.Model.DType, loaded.TotalSeconds, (watch.Elapsed - loaded).TotalSeconds);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            model.SetFailed(new OperationCanceledException("the service stopped before the model was loaded"));
        }
        catch (Exception e)
        {
            logger.LogCritical(e, "Teacher model {Model} could not be loaded", settings.Model);
            model.SetFailed(e);
            await outcome.ExitAsync(1, stoppingToken);
        }
    }

    private static InProcessTeacher Load(TeacherOptions settings)
    {
        if (string.IsNullOrWhiteSpace(settings.Model))
            throw new InvalidOperationException("Teacher:Model (env Teacher__Model) must name an HF model folder");
        return InProcessTeacher.Load(settings.Model, RecipeRun.DType(settings.Dtype), ComputeDevice.Parse(settings.Device, "Teacher:Device"));
    }
}
