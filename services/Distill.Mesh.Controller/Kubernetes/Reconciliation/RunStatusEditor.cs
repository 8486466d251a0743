using Distill.Mesh.Controller.Kubernetes.Entities;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Reconciliation;

/// <summary>Edits a run's status as Kubernetes conventions want it: conditions keep their transition time while their status stands.</summary>
public static class RunStatusEditor
{
    public static void SetCondition(DistillationRunStatus status, string type, bool value, string reason, string message, long? generation, DateTime now)
    {
        var text = value ? "True" : "False";
        var existing = status.Conditions.FirstOrDefault(c => c.Type == type);
        if (existing is null)
        {
            status.Conditions.Add(new V1Condition { Type = type, Status = text, Reason = reason, Message = message, LastTransitionTime = now, ObservedGeneration = generation });
            return;
        }

        var index = status.Conditions.IndexOf(existing);
        status.Conditions[index] = existing with
        {
            Status = text,
            Reason = reason,
            Message = message,
            ObservedGeneration = generation,
            LastTransitionTime = existing.Status == text ? existing.LastTransitionTime : now,
        };
    }

    public static V1Condition? Condition(DistillationRunStatus status, string type) => status.Conditions.FirstOrDefault(c => c.Type == type);

    public static bool IsTrue(DistillationRunStatus status, string type) => Condition(status, type)?.Status == "True";

    public static StageStatusEntry Stage(DistillationRunStatus status, string name)
    {
        var entry = status.Stages.FirstOrDefault(s => s.Name == name);
        if (entry is null)
            status.Stages.Add(entry = new StageStatusEntry { Name = name });
        return entry;
    }

    public static bool IsTerminal(string phase) => phase is RunPhases.Succeeded or RunPhases.Failed or RunPhases.Cancelled;

    /// <summary>Ends the run: phase, reason and message, the matching condition, stages still running marked with <paramref name="stageState"/>.</summary>
    public static void End(DistillationRunStatus status, string phase, string reason, string message, long? generation, DateTime now, string stageState)
    {
        status.Phase = phase;
        status.Reason = reason;
        status.Message = message;
        status.CompletionTime ??= now;
        status.CurrentStage = null;
        foreach (var stage in status.Stages.Where(s => s.State == StageStates.Running))
        {
            stage.State = stageState;
            stage.CompletionTime ??= now;
            stage.Message ??= message;
        }

        SetCondition(status, RunConditions.Progressing, false, reason, message, generation, now);
        if (phase == RunPhases.Succeeded)
            SetCondition(status, RunConditions.Succeeded, true, reason, message, generation, now);
        if (phase == RunPhases.Failed)
            SetCondition(status, RunConditions.Failed, true, reason, message, generation, now);
    }
}
