using System.CommandLine;
using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Specs.Runs;
using Grpc.Core;
using Grpc.Net.Client;

namespace Distill.Mesh.Cli.Commands;

/// <summary><c>distill run submit|watch|ls|cancel</c>: runs through the controller's runs API.</summary>
internal static class RunCommand
{
    private static Option<string> Controller() => new("--controller") { Description = "controller address", DefaultValueFactory = _ => $"http://127.0.0.1:{UpCommand.ControllerPort}" };

    private static GrpcChannel Open(ParseResult parse, Option<string> controller, Option<string?> trust, Option<string?> token) =>
        MeshCliOptions.Channel(parse, parse.GetValue(controller)!, trust, token);

    /// <summary>Each CLI call's deadline (Watch has none: it lasts as long as the run).</summary>
    private static DateTime Deadline => DateTime.UtcNow.AddMinutes(2);

    public static Command Create() => new("run", "Submit and follow runs on the mesh (see `distill up`)") { Submit(), Watch(), List(), Cancel() };

    private static Command Submit()
    {
        var file = new Argument<string>("spec") { Description = "run spec YAML: a `distill train` config, optionally with stages, mesh, precompute, extract and evaluate sections" };
        var overrides = new Argument<string[]>("overrides") { Description = "dotted overrides, e.g. training.max_steps=100 stages=[train,evaluate]", Arity = ArgumentArity.ZeroOrMore };
        var controller = Controller();
        var trust = MeshCliOptions.Trust("the controller");
        var token = MeshCliOptions.Token("the controller");
        var runId = new Option<string?>("--run-id") { Description = "the run's id (default: the controller chooses); submitting the same spec again under it is harmless" };
        var trainer = new Option<string?>("--trainer") { Description = "trainer address when the spec has no mesh.trainer (default: the controller's, as `distill up` lays them out)" };
        var teacher = new Option<string?>("--teacher") { Description = "teacher service address for a run with one teacher (mesh.teacher)" };
        var watch = new Option<bool>("--watch") { Description = "follow the run after submitting" };
        var command = new Command("submit", "Submit a run to the controller") { file, overrides, controller, trust, token, runId, trainer, teacher, watch };
        command.SetAction(async (parse, cancellationToken) => await MeshErrors.GuardAsync(parse.InvocationConfiguration.Error, "controller", parse.GetValue(controller)!, async () =>
        {
            var error = parse.InvocationConfiguration.Error;
            var path = Path.GetFullPath(parse.GetValue(file)!);
            if (!File.Exists(path))
                throw new ArgumentException($"no spec file at '{path}'");
            var all = (parse.GetValue(overrides) ?? []).ToList();
            if (parse.GetValue(trainer) is { } trainerAddress)
                all.Add($"mesh.trainer={trainerAddress}");
            if (parse.GetValue(teacher) is { } teacherAddress)
                all.Add($"mesh.teacher={teacherAddress}");
            // Relative paths resolve against the spec's folder here, where they mean something; the
            // controller receives the canonical spec with absolute paths (nothing is written next to the spec).
            var parsed = RunSpecLoader.Parse(File.ReadAllText(path), all, Path.GetDirectoryName(path), path);
            if (parsed.GivenKeys.Contains("output_dir"))
                error.WriteLine($"note: output_dir in {Path.GetFileName(path)} is for `distill train`; a mesh run writes to its trainer's runs folder");
            var spec = parsed.Canonical;
            spec.Remove("output_dir");
            if (parsed.Spec.Mesh.Trainer is null)
            {
                var address = new Uri(parse.GetValue(controller)!);
                ((System.Text.Json.Nodes.JsonObject)spec["mesh"]!)["trainer"] = new UriBuilder(address) { Port = address.Port + UpCommand.TrainerPort - UpCommand.ControllerPort }.Uri.ToString().TrimEnd('/');
            }

            // The root of the run's trace: controller, trainer, teacher and Redis spans hang below it.
            // Started even when nothing listens (no OTLP endpoint): its context still goes to the
            // controller, so the services' spans share the trace id printed here.
            using var activity = MeshTelemetry.Source.StartActivity("cli.run.submit") ?? new System.Diagnostics.Activity("cli.run.submit").SetIdFormat(System.Diagnostics.ActivityIdFormat.W3C).Start();
            activity.ForRun(parse.GetValue(runId) ?? "");
            using var channel = Open(parse, controller, trust, token);
            var client = new RunsService.RunsServiceClient(channel);
            var run = await client.SubmitAsync(new SubmitRequest { RunId = parse.GetValue(runId) ?? "", SpecYaml = spec.ToJsonString() }, MeshCliOptions.Headers(parse, token),
                Deadline, cancellationToken);
            parse.InvocationConfiguration.Output.WriteLine(run.Resubmitted
                ? $"run {run.RunId} already exists with this spec ({RunView.Phase(run.Phase)}): nothing new was started; outputs in {run.OutputDir}"
                : $"submitted {run.RunId}: stages {string.Join(" → ", run.Stages.Select(s => s.Name))}; outputs in {run.OutputDir}");
            activity.ForRun(run.RunId);
            parse.InvocationConfiguration.Output.WriteLine($"trace {(run.TraceId.Length > 0 ? run.TraceId : activity.TraceId.ToHexString())}");
            return parse.GetValue(watch) ? await Follow(client, run.RunId, parse, cancellationToken) : 0;
        }));
        return command;
    }

    private static Command Watch()
    {
        var runId = new Argument<string>("run-id");
        var controller = Controller();
        var trust = MeshCliOptions.Trust("the controller");
        var token = MeshCliOptions.Token("the controller");
        var command = new Command("watch", "Follow a run's progress until it ends (Ctrl-C stops watching; the run goes on)") { runId, controller, trust, token };
        command.SetAction(async (parse, cancellationToken) => await MeshErrors.GuardAsync(parse.InvocationConfiguration.Error, "controller", parse.GetValue(controller)!, async () =>
        {
            using var channel = Open(parse, controller, trust, token);
            return await Follow(new RunsService.RunsServiceClient(channel), parse.GetValue(runId)!, parse, cancellationToken);
        }));
        return command;
    }

    private static Command List()
    {
        var controller = Controller();
        var trust = MeshCliOptions.Trust("the controller");
        var token = MeshCliOptions.Token("the controller");
        var json = new Option<bool>("--json") { Description = "print JSON (a list of runs) instead of a table" };
        var command = new Command("ls", "List runs") { controller, trust, token, json };
        command.SetAction(async (parse, cancellationToken) => await MeshErrors.GuardAsync(parse.InvocationConfiguration.Error, "controller", parse.GetValue(controller)!, async () =>
        {
            using var channel = Open(parse, controller, trust, token);
            var runs = await new RunsService.RunsServiceClient(channel).ListAsync(new ListRunsRequest(), deadline: Deadline, cancellationToken: cancellationToken);
            var output = parse.InvocationConfiguration.Output;
            var rows = runs.Runs.Select(run => new RunRow(run.RunId, RunView.Phase(run.Phase),
                run.CurrentStage.Length > 0 ? run.CurrentStage : run.Stages.LastOrDefault(s => s.State != StageState.Pending)?.Name ?? "",
                RunView.Progress(run), run.OutputDir, run.Reason)).ToList();
            if (parse.GetValue(json))
                CommandRunner.WriteJson(output, rows);
            else if (rows.Count == 0)
                output.WriteLine("no runs");
            else
                Tables.Write(output, null, ["run", "phase", "stage", "progress", "output", "reason"], rows.Select(r => (IReadOnlyList<string>)[r.RunId, r.Phase, r.Stage, r.Progress, r.OutputDir, r.Reason]));
            return 0;
        }));
        return command;
    }

    /// <summary>One line of `run ls` (its --json element).</summary>
    private sealed record RunRow(string RunId, string Phase, string Stage, string Progress, string OutputDir, string Reason);

    private static Command Cancel()
    {
        var runId = new Argument<string>("run-id");
        var controller = Controller();
        var trust = MeshCliOptions.Trust("the controller");
        var token = MeshCliOptions.Token("the controller");
        var command = new Command("cancel", "Cancel a run (it stops at the next step and keeps its checkpoints)") { runId, controller, trust, token };
        command.SetAction(async (parse, cancellationToken) => await MeshErrors.GuardAsync(parse.InvocationConfiguration.Error, "controller", parse.GetValue(controller)!, async () =>
        {
            using var channel = Open(parse, controller, trust, token);
            var client = new RunsService.RunsServiceClient(channel);
            var id = parse.GetValue(runId)!;
            var run = await client.CancelAsync(new CancelRunRequest { RunId = id }, MeshCliOptions.Headers(parse, token), Deadline, cancellationToken);
            // Cancelling takes effect at the next step boundary: wait (briefly) to report how it ended.
            for (var i = 0; i < 150 && run.Phase is RunPhase.Running or RunPhase.Pending; i++)
            {
                await Task.Delay(200, cancellationToken);
                run = await client.GetAsync(new GetRunRequest { RunId = id }, deadline: Deadline, cancellationToken: cancellationToken);
            }

            parse.InvocationConfiguration.Output.WriteLine(run.Phase is RunPhase.Running or RunPhase.Pending
                ? $"{id}: cancelling (it stops at its next step, keeping its checkpoint)"
                : $"{id}: {RunView.Phase(run.Phase)}{(run.Reason.Length > 0 && run.Phase != RunPhase.Cancelled ? $" ({run.Reason})" : "")}");
            return 0;
        }));
        return command;
    }

    private static async Task<int> Follow(RunsService.RunsServiceClient client, string runId, ParseResult parse, CancellationToken cancellationToken)
    {
        using var view = new RunView(parse.InvocationConfiguration.Error, parse.InvocationConfiguration.Output);
        using var call = client.Watch(new WatchRunRequest { RunId = runId }, cancellationToken: cancellationToken);
        try
        {
            await foreach (var e in call.ResponseStream.ReadAllAsync(cancellationToken))
                view.Show(e);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled || cancellationToken.IsCancellationRequested)
        {
            view.Stopped();
            return 130;
        }

        return view.Finish(runId);
    }
}
