using Distill.Mesh.Controller.Kubernetes.Entities;
using Distill.Mesh.Specs.Runs;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Resources;

/// <summary>One Job of a run: a stage, or a part of one (extraction's shards, then its consolidation).</summary>
/// <param name="Stage">The run stage it belongs to.</param>
/// <param name="Part">The child's name suffix (the Job is named RUN-PART).</param>
/// <param name="Completions">Pods that must succeed; an Indexed Job when above 1 (one shard each).</param>
public sealed record StageStep(string Stage, string Part, int Completions)
{
    public bool Indexed => Completions > 1;
}

/// <summary>
/// The Jobs a run's stages become, as pure functions of the run: precompute as an Indexed Job of
/// the teacher image (one shard per pod, filling Redis), train as a Job of the trainer image (one
/// pod, checkpoints on the runs claim; an evicted or preempted pod is replaced and resumes),
/// extract as an Indexed Job of the extractor image followed by a consolidation Job, evaluate and
/// publish as trainer Jobs. Every pod runs its service's job mode on the run's spec.
/// </summary>
public static class StageJobs
{
    /// <summary>The Jobs of <paramref name="spec"/>, in the order they run.</summary>
    public static IReadOnlyList<StageStep> Steps(RunSpec spec)
    {
        var steps = new List<StageStep>();
        foreach (var stage in spec.Stages)
        {
            switch (stage)
            {
                case Stage.Precompute:
                    steps.Add(new StageStep(stage, "precompute", spec.Precompute.Shards));
                    break;
                case Stage.Extract:
                    steps.Add(new StageStep(stage, "extract", spec.Extract.Shards));
                    steps.Add(new StageStep(stage, "consolidate", 1));
                    break;
                default:
                    steps.Add(new StageStep(stage, stage, 1));
                    break;
            }
        }

        return steps;
    }

    public static string JobName(DistillationRun run, StageStep step) => Labels.ChildName(run, step.Part);

    /// <param name="run">The run.</param>
    /// <param name="step">Which of its Jobs.</param>
    /// <param name="teacher">The teacher a precompute pod loads (model, dtype, device).</param>
    /// <param name="options">Images, Redis, registry, where to report.</param>
    public static V1Job Build(DistillationRun run, StageStep step, TeacherSpec? teacher, KubernetesOptions options)
    {
        var resources = run.Spec.Resources.Of(step.Stage) ?? (step.Stage == Stage.Precompute ? teacher?.Resources : null);
        var (image, environment) = step.Part switch
        {
            "precompute" => (options.TeacherImage, new Dictionary<string, string>
            {
                ["Teacher__Model"] = teacher?.Model ?? throw new InvalidOperationException("precompute needs spec.teacher.model (the teacher the pods load)"),
                ["Teacher__Dtype"] = teacher.Dtype,
                ["Teacher__Device"] = teacher.Device,
                ["Teacher__Redis"] = options.Redis ?? throw new InvalidOperationException("precompute fills Redis: the controller has no Controller:Kubernetes:Redis"),
                ["Teacher__JobSpec"] = PodTemplates.SpecFile,
            }),
            "extract" or "consolidate" => (options.ExtractorImage, new Dictionary<string, string>
            {
                ["Extractor__JobSpec"] = PodTemplates.SpecFile,
                ["Extractor__RunsDirectory"] = PodTemplates.RunsFolder,
                ["Extractor__JobConsolidate"] = step.Part == "consolidate" ? "true" : "false",
                ["DISTILL_RUN_ID"] = run.Metadata.Name,
            }),
            _ => (options.TrainerImage, Trainer(run, step.Stage, options)),
        };
        if (run.Metadata.Annotations?.TryGetValue(Labels.TraceParent, out var traceParent) == true)
            environment["TRACEPARENT"] = traceParent;
        var mounts = step.Part == "precompute" ? PodTemplates.Mounts.Spec | PodTemplates.Mounts.Models : PodTemplates.Mounts.Spec | PodTemplates.Mounts.Runs | PodTemplates.Mounts.Models;
        var pod = PodTemplates.Build(run, step.Part, step.Stage, image, environment, resources, mounts, options);
        var metadata = Labels.Child(run, JobName(run, step), step.Part, step.Stage);
        if (resources?.QueueName is { } queue)
            metadata.Labels[Labels.KueueQueue] = queue;
        return new V1Job
        {
            ApiVersion = "batch/v1",
            Kind = "Job",
            Metadata = metadata,
            Spec = new V1JobSpec
            {
                Template = pod,
                Completions = step.Completions,
                Parallelism = step.Completions,
                CompletionMode = step.Indexed ? "Indexed" : "NonIndexed",
                BackoffLimit = 6,
                // Suspended runs (and Kueue, until it admits the Job) keep the Job's pods away.
                Suspend = run.Spec.Suspend || resources?.QueueName is not null,
                PodFailurePolicy = new V1PodFailurePolicy
                {
                    Rules =
                    [
                        // An evicted or preempted pod does not count as a failure: the Job replaces it and it resumes.
                        new V1PodFailurePolicyRule { Action = "Ignore", OnPodConditions = [new V1PodFailurePolicyOnPodConditionsPattern { Type = "DisruptionTarget", Status = "True" }] },
                        // Exit code 1 is a failure retrying cannot fix (a bad spec, data that does not fit).
                        new V1PodFailurePolicyRule { Action = "FailJob", OnExitCodes = new V1PodFailurePolicyOnExitCodesRequirement { OperatorProperty = "In", Values = [1] } },
                    ],
                },
            },
        };
    }

    private static Dictionary<string, string> Trainer(DistillationRun run, string stage, KubernetesOptions options)
    {
        var environment = new Dictionary<string, string>
        {
            ["Trainer__JobSpec"] = PodTemplates.SpecFile,
            ["Trainer__JobStages"] = stage,
            ["Trainer__RunsDirectory"] = PodTemplates.RunsFolder,
            ["Trainer__Registry"] = options.Registry,
            ["DISTILL_RUN_ID"] = run.Metadata.Name,
        };
        if (options.ReportTo is { } reportTo)
            environment["Trainer__ReportTo"] = reportTo;
        return environment;
    }
}
