using System.Text.Json.Serialization;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Entities;

/// <summary>What the controller observed (written through /status only).</summary>
public sealed class DistillationRunStatus
{
    /// <summary>Pending, Running, Succeeded, Failed, Suspended or Cancelled.</summary>
    [JsonPropertyName("phase")]
    public string Phase { get; set; } = RunPhases.Pending;

    [JsonPropertyName("reason")]
    public string? Reason { get; set; }

    [JsonPropertyName("message")]
    public string? Message { get; set; }

    [JsonPropertyName("observedGeneration")]
    public long? ObservedGeneration { get; set; }

    [JsonPropertyName("currentStage")]
    public string? CurrentStage { get; set; }

    /// <summary>The run's teacher Deployment (or endpoint).</summary>
    [JsonPropertyName("teacher")]
    public string? Teacher { get; set; }

    [JsonPropertyName("specSha256")]
    public string? SpecSha256 { get; set; }

    [JsonPropertyName("startTime")]
    public DateTime? StartTime { get; set; }

    [JsonPropertyName("completionTime")]
    public DateTime? CompletionTime { get; set; }

    [JsonPropertyName("stages")]
    public List<StageStatusEntry> Stages { get; set; } = [];

    [JsonPropertyName("conditions")]
    public List<V1Condition> Conditions { get; set; } = [];

    [JsonPropertyName("progress")]
    public TrainingProgress? Progress { get; set; }

    /// <summary>The published artifact (registry name:version).</summary>
    [JsonPropertyName("artifact")]
    public string? Artifact { get; set; }
}

/// <summary>One stage as the controller sees it.</summary>
public sealed class StageStatusEntry
{
    [JsonPropertyName("name")]
    public string Name { get; set; } = "";

    /// <summary>Pending, Running, Succeeded, Failed or Cancelled.</summary>
    [JsonPropertyName("state")]
    public string State { get; set; } = StageStates.Pending;

    /// <summary>The Job that runs it.</summary>
    [JsonPropertyName("child")]
    public string? Child { get; set; }

    [JsonPropertyName("startTime")]
    public DateTime? StartTime { get; set; }

    [JsonPropertyName("completionTime")]
    public DateTime? CompletionTime { get; set; }

    [JsonPropertyName("message")]
    public string? Message { get; set; }

    /// <summary>Since when its pods wait for a node or a quota (cleared once they run).</summary>
    [JsonPropertyName("waitingSince")]
    public DateTime? WaitingSince { get; set; }
}

/// <summary>The train stage's progress, mirrored from the trainer pod's reports (throttled).</summary>
public sealed class TrainingProgress
{
    [JsonPropertyName("step")]
    public long Step { get; set; }

    [JsonPropertyName("totalSteps")]
    public long TotalSteps { get; set; }

    [JsonPropertyName("loss")]
    public double? Loss { get; set; }

    [JsonPropertyName("tokensPerSecond")]
    public double? TokensPerSecond { get; set; }

    [JsonPropertyName("etaSeconds")]
    public long? EtaSeconds { get; set; }

    [JsonPropertyName("lastUpdate")]
    public DateTime? LastUpdate { get; set; }

    /// <summary>"step/total" for the printer column.</summary>
    [JsonPropertyName("summary")]
    public string? Summary { get; set; }
}

/// <summary>A run's phases.</summary>
public static class RunPhases
{
    public const string Pending = "Pending";
    public const string Running = "Running";
    public const string Succeeded = "Succeeded";
    public const string Failed = "Failed";
    public const string Suspended = "Suspended";
    public const string Cancelled = "Cancelled";
}

/// <summary>A stage's states.</summary>
public static class StageStates
{
    public const string Pending = "Pending";
    public const string Running = "Running";
    public const string Succeeded = "Succeeded";
    public const string Failed = "Failed";
    public const string Cancelled = "Cancelled";
}

/// <summary>The condition types a run reports.</summary>
public static class RunConditions
{
    public const string TeacherReady = "TeacherReady";
    public const string Progressing = "Progressing";
    public const string Succeeded = "Succeeded";
    public const string Failed = "Failed";
    public const string Suspended = "Suspended";

    /// <summary>Reasons the controller uses (with the scheduler's or Kueue's message verbatim).</summary>
    public const string Unschedulable = "Unschedulable";
    public const string WaitingForQuota = "WaitingForQuota";
}
