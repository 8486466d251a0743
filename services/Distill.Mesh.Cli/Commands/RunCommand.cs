using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Specs.Configuration;
using Grpc.Core;
using Distill.Mesh.ServiceDefaults;
using Grpc.Net.Client;
using EngineEvent = Distill.Mesh.Training.Recipes.TrainEvent;
using EngineEval = Distill.Mesh.Training.Recipes.EvalResult;

namespace Distill.Mesh.Cli.Commands;

/// <summary><c>distill run submit|watch|ls|cancel</c>: runs through the controller's runs API.</summary>
internal static class RunCommand
{
    private static Option<string> Controller() => new("--controller") { Description = "controller address", DefaultValueFactory = _ => $"http://127.0.0.1:{UpCommand.ControllerPort}" };

    private static GrpcChannel Open(ParseResult parse, Option<string> controller, Option<string?> trust) =>
        MeshTls.CreateChannel(parse.GetValue(controller)!, parse.GetValue(trust));

    public static Command Create() => new("run", "Submit and follow runs on the mesh (see `distill up`)") { Submit(), Watch(), List(), Cancel() };

    private static Command Submit()
    {
        var file = new Argument<string>("spec") { Description = "run spec YAML: the `distill train` config plus an optional mesh: {trainer, teacher} section" };
        var overrides = new Argument<string[]>("overrides") { Arity = ArgumentArity.ZeroOrMore };
        var controller = Controller();
        var trust = MeshCliOptions.Trust("the controller");
        var token = MeshCliOptions.Token("the controller");
        var runId = new Option<string?>("--run-id");
        var trainer = new Option<string?>("--trainer") { Description = "trainer address when the spec has none (default: the controller's host, port + 2, as `distill up` lays them out)" };
        var teacher = new Option<string?>("--teacher") { Description = "teacher service address when the spec has none (else the trainer loads the teachers)" };
        var watch = new Option<bool>("--watch") { Description = "follow the run after submitting" };
        var command = new Command("submit", "Submit a run to the controller") { file, overrides, controller, trust, token, runId, trainer, teacher, watch };
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var path = Path.GetFullPath(parse.GetValue(file)!);
                var spec = TrainConfigLoader.Parse(File.ReadAllText(path));
                var mesh = spec["mesh"] as JsonObject ?? [];
                spec.Remove("mesh");
                // Resolve paths against the spec's folder here: the trainer reads the config elsewhere.
                var temp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileNameWithoutExtension(path)}.{Guid.NewGuid():N}.yaml");
                TrainConfig config;
                try
                {
                    File.WriteAllText(temp, spec.ToJsonString());
                    (config, _) = TrainConfigLoader.Load(temp, parse.GetValue(overrides) ?? []);
                }
                finally
                {
                    File.Delete(temp);
                }

                var resolved = JsonSerializer.SerializeToNode(config, TrainConfigLoader.Json)!.AsObject();
                resolved["mesh"] = new JsonObject
                {
                    ["trainer"] = mesh["trainer"]?.GetValue<string>() ?? parse.GetValue(trainer) ?? new UriBuilder(parse.GetValue(controller)!) { Port = new Uri(parse.GetValue(controller)!).Port + UpCommand.TrainerPort - UpCommand.ControllerPort }.Uri.ToString().TrimEnd('/'),
                    ["teacher"] = mesh["teacher"]?.GetValue<string>() ?? parse.GetValue(teacher),
                };
                // The root of the run's trace: controller, trainer, teacher and Redis spans hang below it.
                using var activity = ServiceDefaults.MeshTelemetry.Source.StartActivity("cli.run.submit");
                using var channel = Open(parse, controller, trust);
                var client = new RunsService.RunsServiceClient(channel);
                var run = await client.SubmitAsync(new SubmitRequest { RunId = parse.GetValue(runId) ?? "", SpecYaml = resolved.ToJsonString() }, MeshAuth.Headers(parse.GetValue(token)), cancellationToken: cancellationToken);
                parse.InvocationConfiguration.Output.WriteLine($"submitted {run.RunId} ({run.State}); outputs in {run.OutputDir}");
                return parse.GetValue(watch) ? await Follow(client, run.RunId, parse, cancellationToken) : 0;
            }
            catch (Exception e) when (e is RpcException or ConfigException or FileNotFoundException or ArgumentException)
            {
                parse.InvocationConfiguration.Error.WriteLine($"error: {(e is RpcException r ? $"{r.StatusCode}: {r.Status.Detail}" : e.Message)}");
                return 1;
            }
        });
        return command;
    }

    private static Command Watch()
    {
        var runId = new Argument<string>("run-id");
        var controller = Controller();
        var trust = MeshCliOptions.Trust("the controller");
        var command = new Command("watch", "Follow a run's progress") { runId, controller, trust };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var channel = Open(parse, controller, trust);
            try
            {
                return await Follow(new RunsService.RunsServiceClient(channel), parse.GetValue(runId)!, parse, cancellationToken);
            }
            catch (RpcException e)
            {
                parse.InvocationConfiguration.Error.WriteLine($"error: {e.StatusCode}: {e.Status.Detail}");
                return 1;
            }
        });
        return command;
    }

    private static Command List()
    {
        var controller = Controller();
        var trust = MeshCliOptions.Trust("the controller");
        var command = new Command("ls", "List runs") { controller, trust };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var channel = Open(parse, controller, trust);
            var runs = await new RunsService.RunsServiceClient(channel).ListAsync(new ListRunsRequest(), cancellationToken: cancellationToken);
            var output = parse.InvocationConfiguration.Output;
            output.WriteLine($"{"RUN",-32} {"STATE",-12} {"STEP",10}  OUTPUT");
            foreach (var run in runs.Runs)
                output.WriteLine($"{run.RunId,-32} {run.State,-12} {$"{run.Step}/{run.TotalSteps}",10}  {run.OutputDir}");
            return 0;
        });
        return command;
    }

    private static Command Cancel()
    {
        var runId = new Argument<string>("run-id");
        var controller = Controller();
        var trust = MeshCliOptions.Trust("the controller");
        var token = MeshCliOptions.Token("the controller");
        var command = new Command("cancel", "Cancel a run (it stops at the next step and keeps its checkpoints)") { runId, controller, trust, token };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var channel = Open(parse, controller, trust);
            try
            {
                var run = await new RunsService.RunsServiceClient(channel).CancelAsync(new CancelRunRequest { RunId = parse.GetValue(runId)! },
                    MeshAuth.Headers(parse.GetValue(token)), cancellationToken: cancellationToken);
                parse.InvocationConfiguration.Output.WriteLine($"{run.RunId} {run.State}");
                return 0;
            }
            catch (RpcException e)
            {
                parse.InvocationConfiguration.Error.WriteLine($"error: {e.StatusCode}: {e.Status.Detail}");
                return 1;
            }
        });
        return command;
    }

    private static async Task<int> Follow(RunsService.RunsServiceClient client, string runId, ParseResult parse, CancellationToken cancellationToken)
    {
        var error = parse.InvocationConfiguration.Error;
        var progress = new ProgressLine(error, Console.IsErrorRedirected || !ReferenceEquals(error, Console.Error));
        Contracts.Trainer.V1.RunState state = Contracts.Trainer.V1.RunState.Unspecified;
        var message = "";
        using var call = client.Watch(new WatchRunRequest { RunId = runId }, cancellationToken: cancellationToken);
        await foreach (var e in call.ResponseStream.ReadAllAsync(cancellationToken))
        {
            var t = e.Train;
            state = t.State;
            message = t.Message;
            if (t.Step > 0)
            {
                progress.Report(new EngineEvent(t.Step, t.TotalSteps, t.Loss, t.KdLoss, t.CeLoss, t.LearningRate, t.GradNorm, t.TokensPerSecond, t.Tokens,
                    t.Eval is null ? null : new EngineEval(t.Eval.Perplexity, t.Eval.HasKlToTeacher ? t.Eval.KlToTeacher : null, t.Eval.HasTop1Agreement ? t.Eval.Top1Agreement : null, t.Eval.Tokens),
                    string.IsNullOrEmpty(t.Message) ? null : t.Message));
            }
        }

        progress.Finish();
        parse.InvocationConfiguration.Output.WriteLine(string.IsNullOrEmpty(message) ? $"{runId}: {state}" : $"{runId}: {state}: {message}");
        return state == Contracts.Trainer.V1.RunState.Succeeded ? 0 : 1;
    }
}
