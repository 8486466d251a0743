using Distill.Mesh.Training.Teachers;
using Grpc.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Distill.Mesh.Teacher.Scoring;

/// <summary>
/// The service's teacher, once it is loaded and has run one warm-up forward. Until then calls are
/// refused with Unavailable (clients retry) and readiness is NotServing, so Kubernetes sends no
/// traffic to a pod that would make requests wait for a model load.
/// </summary>
public sealed class TeacherModel : IDisposable
{
    private readonly TaskCompletionSource<InProcessTeacher> _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly bool _owned;

    /// <param name="supplied">A teacher the caller keeps (and disposes); null: the loader will load one.</param>
    public TeacherModel(InProcessTeacher? supplied = null)
    {
        Supplied = supplied;
        _owned = supplied is null;
    }

    /// <summary>The teacher handed in by the host, if any (it still warms up before it is ready).</summary>
    public InProcessTeacher? Supplied { get; }

    /// <summary>Completes when the teacher is loaded and warmed up; faults when loading failed.</summary>
    public Task<InProcessTeacher> Ready => _loaded.Task;

    public bool IsReady => _loaded.Task.IsCompletedSuccessfully;

    /// <summary>The ready teacher, or Unavailable.</summary>
    public InProcessTeacher Require() => _loaded.Task.IsCompletedSuccessfully
        ? _loaded.Task.Result
        : throw new RpcException(new Status(StatusCode.Unavailable, _loaded.Task.IsFaulted
            ? $"the teacher's model failed to load: {_loaded.Task.Exception!.InnerException!.Message}"
            : "the teacher is still loading its model; retry shortly"));

    internal void SetReady(InProcessTeacher teacher) => _loaded.TrySetResult(teacher);

    internal void SetFailed(Exception error) => _loaded.TrySetException(error);

    public void Dispose()
    {
        if (_owned && _loaded.Task.IsCompletedSuccessfully)
            _loaded.Task.Result.Dispose();
    }
}

/// <summary>Readiness: the teacher is loaded and warmed up.</summary>
public sealed class TeacherReadiness(TeacherModel model) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) => Task.FromResult(
        model.IsReady ? HealthCheckResult.Healthy("model loaded and warmed up")
        : model.Ready.IsFaulted ? HealthCheckResult.Unhealthy($"model failed to load: {model.Ready.Exception!.InnerException!.Message}")
        : HealthCheckResult.Unhealthy("loading the model"));
}
