using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Distill.Mesh.Testing.Kubernetes;
using k8s.Models;

namespace Distill.Mesh.Operator.Tests.Cluster;

/// <summary>A pod as the kubelet starts it: its container, its environment with volume paths mapped to host folders, its logs.</summary>
internal sealed class PodContext(V1Pod pod, IReadOnlyDictionary<string, string> environment, string folder)
{
    private volatile HttpMessageHandler? _handler;

    public V1Pod Pod { get; } = pod;

    public V1Container Container => Pod.Spec.Containers[0];

    public string Name => Pod.Metadata.Name;

    public string Component => Pod.Metadata.Labels?.TryGetValue("app.kubernetes.io/component", out var component) == true ? component : Container.Name;

    /// <summary>The container's environment; values under a volume's mount path point at the volume's host folder.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; } = environment;

    /// <summary>A scratch folder of the pod's own (its content root).</summary>
    public string Folder { get; } = folder;

    public ConcurrentQueue<string> Logs { get; } = new();

    /// <summary>What the pod serves once its readiness probe passes (null: not ready).</summary>
    public HttpMessageHandler? Handler => _handler;

    /// <summary>When the kubelet started the container.</summary>
    public DateTime StartedAt { get; } = DateTime.UtcNow;

    /// <summary>When the container first served (its readiness passed).</summary>
    public DateTime? ReadyAt { get; private set; }

    /// <summary>Marks the pod Ready, serving <paramref name="handler"/>.</summary>
    public void Serve(HttpMessageHandler handler)
    {
        ReadyAt ??= DateTime.UtcNow;
        _handler = handler;
    }
}

/// <summary>What runs a pod's container in process: returns the container's exit code; <c>terminate</c> is its SIGTERM.</summary>
internal delegate Task<int> PodRunner(PodContext pod, CancellationToken terminate);

/// <summary>
/// The kubelet of every node: starts each pod bound to a node (its volumes as host folders: a
/// ConfigMap's keys as files, a claim as the cluster's folder for it, emptyDir as a fresh one),
/// reports Running, Ready (once the container serves) and the container's exit code, and on
/// deletion sends it SIGTERM and waits for it to stop before reporting it terminated.
/// </summary>
internal sealed class Kubelet(FakeApiServer api, Func<string, string> claimFolder, string scratch)
{
    private readonly ConcurrentDictionary<string, Running> _running = new(StringComparer.Ordinal);
    private readonly HashSet<string> _started = new(StringComparer.Ordinal);

    private sealed record Running(PodContext Context, CancellationTokenSource Terminate, Task<int> Exit)
    {
        public bool ReportedReady { get; set; }
    }

    /// <summary>Runs the pods' containers; tests swap it for scripted ones.</summary>
    public PodRunner Runner { get; set; } = (_, terminate) => Task.Delay(Timeout.Infinite, terminate).ContinueWith(_ => 143, TaskScheduler.Default);

    /// <summary>Every pod started so far, by name, with its logs (for a failing test's message).</summary>
    public ConcurrentDictionary<string, PodContext> Started { get; } = new(StringComparer.Ordinal);

    /// <summary>The handler of a Ready pod running here, by pod uid.</summary>
    public HttpMessageHandler? HandlerOf(string uid) => _running.TryGetValue(uid, out var running) ? running.Context.Handler : null;

    public void Pass(IReadOnlyList<V1Pod> pods)
    {
        var byUid = pods.ToDictionary(p => p.Metadata.Uid, StringComparer.Ordinal);
        foreach (var pod in pods)
        {
            if (pod.Status?.Phase != "Pending")
                continue;
            if (Objects.Deleting(pod) && !_running.ContainsKey(pod.Metadata.Uid))
            {
                // Deleted before its container started: nothing to stop.
                Status(pod, "Failed", exitCode: null, ready: false);
                continue;
            }

            if (pod.Spec.NodeName is not null && !_started.Contains(pod.Metadata.Uid))
                Start(pod);
        }

        foreach (var (uid, running) in _running)
        {
            byUid.TryGetValue(uid, out var pod);
            if (pod is null || Objects.Deleting(pod))
                running.Terminate.Cancel();
            if (running.Exit.IsCompleted)
            {
                _running.TryRemove(uid, out _);
                var code = running.Exit.IsCompletedSuccessfully ? running.Exit.Result : 128;
                if (running.Exit.Exception is { } e)
                    running.Context.Logs.Enqueue($"[kubelet] the container crashed: {e.GetBaseException()}");
                if (pod is not null)
                    Status(pod, code == 0 ? "Succeeded" : "Failed", code, ready: false);
                running.Terminate.Dispose();
                continue;
            }

            if (pod is not null && !running.ReportedReady && running.Context.Handler is not null && !Objects.Deleting(pod))
            {
                running.ReportedReady = true;
                Status(pod, "Running", exitCode: null, ready: true);
            }
        }
    }

    private void Start(V1Pod pod)
    {
        var folder = Path.Combine(scratch, pod.Metadata.Name);
        var mounts = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var volume in pod.Spec.Volumes ?? [])
        {
            var host = Path.Combine(folder, "volumes", volume.Name);
            if (volume.ConfigMap is { } source)
            {
                // The container does not start until its ConfigMap exists.
                if (api.Get("", "v1", "configmaps", pod.Metadata.NamespaceProperty, source.Name) is not { } map)
                    return;
                Directory.CreateDirectory(host);
                foreach (var (key, value) in map["data"]?.AsObject() ?? [])
                    File.WriteAllText(Path.Combine(host, key), value!.GetValue<string>());
            }
            else if (volume.Secret is { } secret)
            {
                if (api.Get("", "v1", "secrets", pod.Metadata.NamespaceProperty, secret.SecretName) is not { } stored)
                    return;
                Directory.CreateDirectory(host);
                foreach (var (key, value) in stored["data"]?.AsObject() ?? [])
                    File.WriteAllBytes(Path.Combine(host, key), Convert.FromBase64String(value!.GetValue<string>()));
            }
            else if (volume.PersistentVolumeClaim is { } claim)
            {
                host = claimFolder(claim.ClaimName);
            }
            else
            {
                // An emptyDir (the pods' /tmp) is the process's own temp folder: the host's paths under /tmp stay as they are.
                continue;
            }

            mounts[volume.Name] = host;
        }

        var container = pod.Spec.Containers[0];
        var paths = (container.VolumeMounts ?? []).Where(m => mounts.ContainsKey(m.Name)).OrderByDescending(m => m.MountPath.Length).ToList();
        string Map(string value)
        {
            foreach (var mount in paths)
            {
                if (value == mount.MountPath || value.StartsWith(mount.MountPath + "/", StringComparison.Ordinal))
                    return mounts[mount.Name] + value[mount.MountPath.Length..];
            }

            return value;
        }

        var environment = (container.Env ?? []).ToDictionary(e => e.Name, e => Map(e.Value ?? ""), StringComparer.Ordinal);
        var context = new PodContext(pod, environment, folder);
        Directory.CreateDirectory(folder);
        _started.Add(pod.Metadata.Uid);
        Started[pod.Metadata.Name] = context;
        var terminate = new CancellationTokenSource();
        var runner = Runner;
        _running[pod.Metadata.Uid] = new Running(context, terminate, Task.Run(() => runner(context, terminate.Token), CancellationToken.None));
        Status(pod, "Running", exitCode: null, ready: false);
    }

    /// <summary>Writes the pod's phase, its container's state and the kubelet's conditions (keeping the others, DisruptionTarget among them).</summary>
    private void Status(V1Pod pod, string phase, int? exitCode, bool ready)
    {
        var container = pod.Spec.Containers[0].Name;
        var kept = (pod.Status?.Conditions ?? []).Where(c => c.Type is not ("Ready" or "ContainersReady" or "Initialized" or "PodScheduled")).Select(Objects.Node);
        var conditions = new JsonArray(kept.Select(c => (JsonNode)c).ToArray());
        foreach (var (type, holds) in new[] { ("PodScheduled", pod.Spec.NodeName is not null), ("Initialized", true), ("ContainersReady", ready), ("Ready", ready) })
            conditions.Add(new JsonObject { ["type"] = type, ["status"] = holds ? "True" : "False", ["lastTransitionTime"] = Objects.Now() });
        var state = phase switch
        {
            "Running" => new JsonObject { ["running"] = new JsonObject { ["startedAt"] = Objects.Now() } },
            _ => new JsonObject { ["terminated"] = new JsonObject { ["exitCode"] = exitCode ?? 137, ["reason"] = exitCode == 0 ? "Completed" : "Error", ["finishedAt"] = Objects.Now() } },
        };
        var status = new JsonObject
        {
            ["phase"] = phase,
            ["conditions"] = conditions,
            ["containerStatuses"] = new JsonArray(new JsonObject { ["name"] = container, ["ready"] = ready, ["restartCount"] = 0, ["image"] = pod.Spec.Containers[0].Image, ["state"] = state }),
        };
        if (pod.Status?.StartTime is null)
            status["startTime"] = Objects.Now();
        try
        {
            api.Patch("", "v1", "pods", pod.Metadata.NamespaceProperty, pod.Metadata.Name, new JsonObject { ["status"] = status });
        }
        catch (InvalidOperationException)
        {
            // The pod went away meanwhile.
        }
    }

    /// <summary>Sends SIGTERM to every container and waits for them.</summary>
    public async Task StopAllAsync()
    {
        foreach (var running in _running.Values)
            running.Terminate.Cancel();
        await Task.WhenAll(_running.Values.Select(r => r.Exit.ContinueWith(_ => { }, TaskScheduler.Default))).WaitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>The logs of every pod started so far (a failing test's message).</summary>
    public string Logs()
    {
        var text = new StringBuilder();
        foreach (var (name, pod) in Started.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            text.AppendLine($"--- pod {name}");
            foreach (var line in pod.Logs.TakeLast(40))
                text.AppendLine(line);
        }

        return text.ToString();
    }
}
