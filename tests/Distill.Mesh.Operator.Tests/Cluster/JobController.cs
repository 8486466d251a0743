using System.Text.Json.Nodes;
using Distill.Mesh.Testing.Kubernetes;
using k8s.Models;

namespace Distill.Mesh.Operator.Tests.Cluster;

/// <summary>
/// The batch/v1 Job controller, as far as the operator relies on it: pods from the template (an
/// Indexed Job gets one per completion index, with JOB_COMPLETION_INDEX), a replacement for a pod
/// that failed or went away (only once the old one has terminated, as podReplacementPolicy Failed
/// does with a pod failure policy), the pod failure policy (Ignore for DisruptionTarget, FailJob on
/// exit codes), backoffLimit, suspend (its active pods are deleted), and the Complete, Failed and
/// Suspended conditions. Pods carry the job-tracking finalizer until their end is counted.
/// </summary>
internal sealed class JobController(FakeApiServer api)
{
    public const string Tracking = "batch.kubernetes.io/job-tracking";
    public const string IndexAnnotation = "batch.kubernetes.io/job-completion-index";

    private readonly Dictionary<string, Book> _books = new(StringComparer.Ordinal);

    /// <summary>What the controller has counted of one Job's ended pods.</summary>
    private sealed class Book
    {
        public HashSet<string> Counted { get; } = new(StringComparer.Ordinal);
        public HashSet<string> DeletedBySuspend { get; } = new(StringComparer.Ordinal);
        public HashSet<int> SucceededIndexes { get; } = [];
        public int Succeeded { get; set; }
        public int Failed { get; set; }
        public string? FailJob { get; set; }
    }

    public void Pass(IReadOnlyList<V1Pod> pods)
    {
        foreach (var job in api.List("batch", "v1", "jobs").Select(Objects.Typed<V1Job>))
        {
            var book = _books.TryGetValue(job.Metadata.Uid, out var b) ? b : _books[job.Metadata.Uid] = new Book();
            var mine = pods.Where(p => Objects.OwnedBy(p.Metadata, job.Metadata.Uid)).ToList();
            foreach (var pod in mine.Where(Objects.Terminal))
                Count(job, book, pod);
            Reconcile(job, book, mine);
        }
    }

    private void Count(V1Job job, Book book, V1Pod pod)
    {
        if (book.Counted.Add(pod.Metadata.Uid))
        {
            if (pod.Status.Phase == "Succeeded")
            {
                book.Succeeded++;
                if (Index(pod) is { } index)
                    book.SucceededIndexes.Add(index);
            }
            else if (!book.DeletedBySuspend.Contains(pod.Metadata.Uid))
            {
                var exit = pod.Status.ContainerStatuses?.FirstOrDefault()?.State?.Terminated?.ExitCode;
                var disrupted = pod.Status.Conditions?.Any(c => c.Type == "DisruptionTarget" && c.Status == "True") == true;
                var action = Action(job, exit, disrupted);
                if (action == "FailJob")
                    book.FailJob ??= $"Container {pod.Spec.Containers[0].Name} for pod {pod.Metadata.NamespaceProperty}/{pod.Metadata.Name} failed with exit code {exit} matching FailJob rule at index 1";
                else if (action != "Ignore")
                    book.Failed++;
            }
        }

        if (pod.Metadata.Finalizers?.Contains(Tracking) == true)
        {
            var rest = new JsonArray(pod.Metadata.Finalizers.Where(f => f != Tracking).Select(f => (JsonNode)JsonValue.Create(f)).ToArray());
            api.Patch("", "v1", "pods", pod.Metadata.NamespaceProperty, pod.Metadata.Name, new JsonObject { ["metadata"] = new JsonObject { ["finalizers"] = rest } });
        }
    }

    /// <summary>The pod failure policy's verdict on a failed pod: the first rule that matches.</summary>
    private static string? Action(V1Job job, int? exit, bool disrupted)
    {
        foreach (var rule in job.Spec.PodFailurePolicy?.Rules ?? [])
        {
            if (rule.OnPodConditions?.Any(c => c.Type == "DisruptionTarget" && c.Status == "True") == true && disrupted)
                return rule.Action;
            if (rule.OnExitCodes is { } codes && exit is { } code && (codes.OperatorProperty == "In") == codes.Values.Contains(code))
                return rule.Action;
        }

        return null;
    }

    private void Reconcile(V1Job job, Book book, List<V1Pod> mine)
    {
        var ns = job.Metadata.NamespaceProperty;
        var conditions = job.Status?.Conditions?.ToList() ?? [];
        var active = mine.Where(p => !Objects.Terminal(p) && !Objects.Deleting(p)).ToList();
        var terminating = mine.Count(p => !Objects.Terminal(p) && Objects.Deleting(p));
        var completions = job.Spec.Completions ?? 1;
        var status = new JsonObject();

        if (conditions.Any(c => c.Type is "Complete" or "Failed" && c.Status == "True"))
        {
            foreach (var pod in active)
                api.Delete("", "v1", "pods", ns, pod.Metadata.Name);
            return;
        }

        string? failure = book.FailJob is { } message ? message : book.Failed > (job.Spec.BackoffLimit ?? 6) ? "Job has reached the specified backoff limit" : null;
        if (failure is not null)
        {
            foreach (var pod in active)
                api.Delete("", "v1", "pods", ns, pod.Metadata.Name);
            conditions.Add(Condition("FailureTarget", book.FailJob is null ? "BackoffLimitExceeded" : "PodFailurePolicy", failure));
            conditions.Add(Condition("Failed", book.FailJob is null ? "BackoffLimitExceeded" : "PodFailurePolicy", failure));
            Write(job, status, conditions, active: 0, book);
            return;
        }

        if (job.Spec.Suspend == true)
        {
            foreach (var pod in active)
            {
                book.DeletedBySuspend.Add(pod.Metadata.Uid);
                api.Delete("", "v1", "pods", ns, pod.Metadata.Name);
            }

            if (!conditions.Any(c => c.Type == "Suspended" && c.Status == "True"))
            {
                conditions.RemoveAll(c => c.Type == "Suspended");
                conditions.Add(Condition("Suspended", "JobSuspended", "Job suspended"));
            }

            Write(job, status, conditions, active: 0, book);
            return;
        }

        if (conditions.RemoveAll(c => c.Type == "Suspended" && c.Status == "True") > 0)
            conditions.Add(Condition("Suspended", "JobResumed", "Job resumed", "False"));
        if (job.Status?.StartTime is null)
            status["startTime"] = Objects.Now();

        var indexed = job.Spec.CompletionMode == "Indexed";
        var done = indexed ? book.SucceededIndexes.Count >= completions : book.Succeeded >= completions;
        if (done)
        {
            conditions.Add(Condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"));
            conditions.Add(Condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"));
            status["completionTime"] = Objects.Now();
            Write(job, status, conditions, active: active.Count, book);
            return;
        }

        // A replacement waits until the pod it replaces has terminated (podReplacementPolicy: Failed).
        if (terminating == 0)
        {
            if (indexed)
            {
                for (var index = 0; index < completions; index++)
                {
                    if (!book.SucceededIndexes.Contains(index) && !active.Any(p => Index(p) == index))
                        active.Add(Objects.Typed<V1Pod>(CreatePod(job, index)));
                }
            }
            else
            {
                var wanted = Math.Min(job.Spec.Parallelism ?? 1, completions - book.Succeeded);
                for (var i = active.Count; i < wanted; i++)
                    active.Add(Objects.Typed<V1Pod>(CreatePod(job, null)));
            }
        }

        Write(job, status, conditions, active.Count, book);
    }

    private JsonObject CreatePod(V1Job job, int? index)
    {
        var template = Objects.Node(job.Spec.Template);
        var metadata = template["metadata"] as JsonObject ?? [];
        var labels = metadata["labels"] as JsonObject ?? [];
        labels["job-name"] = job.Metadata.Name;
        labels["batch.kubernetes.io/job-name"] = job.Metadata.Name;
        labels["controller-uid"] = job.Metadata.Uid;
        labels["batch.kubernetes.io/controller-uid"] = job.Metadata.Uid;
        var annotations = metadata["annotations"] as JsonObject ?? [];
        var spec = template["spec"]!.AsObject();
        if (index is { } i)
        {
            labels[IndexAnnotation] = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            annotations[IndexAnnotation] = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (var container in spec["containers"]!.AsArray().OfType<JsonObject>())
            {
                var env = container["env"] as JsonArray ?? [];
                env.Add(new JsonObject { ["name"] = "JOB_COMPLETION_INDEX", ["value"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                container["env"] = env;
            }
        }

        var pod = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject
            {
                ["name"] = index is { } n ? $"{job.Metadata.Name}-{n}-{Objects.Suffix()}" : $"{job.Metadata.Name}-{Objects.Suffix()}",
                ["namespace"] = job.Metadata.NamespaceProperty,
                ["labels"] = labels.DeepClone(),
                ["annotations"] = annotations.DeepClone(),
                ["finalizers"] = new JsonArray(Tracking),
                ["ownerReferences"] = new JsonArray(new JsonObject
                {
                    ["apiVersion"] = "batch/v1",
                    ["kind"] = "Job",
                    ["name"] = job.Metadata.Name,
                    ["uid"] = job.Metadata.Uid,
                    ["controller"] = true,
                    ["blockOwnerDeletion"] = true,
                }),
            },
            ["spec"] = spec.DeepClone(),
            ["status"] = new JsonObject { ["phase"] = "Pending" },
        };
        return api.Put("", "v1", "pods", pod);
    }

    private static int? Index(V1Pod pod) =>
        pod.Metadata.Annotations?.TryGetValue(IndexAnnotation, out var text) == true && int.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var index) ? index : null;

    private static V1JobCondition Condition(string type, string reason, string message, string status = "True") => new()
    {
        Type = type,
        Status = status,
        Reason = reason,
        Message = message,
        LastTransitionTime = DateTime.UtcNow,
        LastProbeTime = DateTime.UtcNow,
    };

    private void Write(V1Job job, JsonObject status, List<V1JobCondition> conditions, int active, Book book)
    {
        status["active"] = active;
        status["succeeded"] = book.Succeeded;
        status["failed"] = book.Failed;
        status["conditions"] = Objects.Node(new { items = conditions })["items"]!.DeepClone();
        var current = Objects.Node(job.Status ?? new V1JobStatus());
        var next = (JsonObject)current.DeepClone();
        foreach (var (key, value) in status)
            next[key] = value?.DeepClone();
        if (JsonNode.DeepEquals(current, next))
            return;
        api.Patch("batch", "v1", "jobs", job.Metadata.NamespaceProperty, job.Metadata.Name, new JsonObject { ["status"] = next });
    }
}
