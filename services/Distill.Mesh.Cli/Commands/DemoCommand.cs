using System.CommandLine;
using System.Text.Json;
using Distill.Mesh.Cli.Display;
using Distill.Mesh.Cli.Hosting;
using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Controller.Extensions;
using Distill.Mesh.Trainer.Extensions;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Demo;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill demo</c>: the main job on embedded defaults — train (or reuse) a teacher on generated
/// sentences, distil it into a smaller student with KD and with plain fine-tuning, print the table.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var workdir = new Option<string>("--workdir") { Description = "where data, models and runs go", DefaultValueFactory = _ => Path.Combine(".distill", "demo") };
        var mesh = new Option<bool>("--mesh") { Description = "train the students through the services (controller → trainer → teacher over gRPC)" };
        var command = new Command("demo", "Distil a teacher into a student (KD vs. plain fine-tuning) on generated data; prints the comparison") { workdir, mesh };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var folder = Path.GetFullPath(parse.GetValue(workdir)!);
            var apps = new List<WebApplication>();
            // Each training phase gets its own bar; the demo's own lines go above the bars.
            using var display = ProgressDisplays.For(parse.InvocationConfiguration.Error);
            DistillationDemo.StudentTrainer? trainStudent = null;
            if (parse.GetValue(mesh))
                trainStudent = await StartMeshAsync(folder, apps, display.Log, cancellationToken);
            IReadOnlyList<DistillationDemo.Row> rows;
            try
            {
                rows = await DistillationDemo.RunAsync(folder, display.Log, cancellationToken, trainStudent, label => new TrainView(display, label));
            }
            finally
            {
                foreach (var app in Enumerable.Reverse(apps))
                {
                    await app.StopAsync(CancellationToken.None);
                    await app.DisposeAsync();
                }
            }

            display.Dispose();
            var table = DistillationDemo.Table(rows);
            output.WriteLine(table);
            File.WriteAllText(Path.Combine(folder, parse.GetValue(mesh) ? "demo_results_mesh.md" : "demo_results.md"), table + "\n");
            var kd = rows.Single(r => r.Model == "student KD");
            var sft = rows.Single(r => r.Model == "student SFT");
            output.WriteLine();
            output.WriteLine(Summary(folder, kd, sft, parse.GetValue(mesh)));
            return 0;
        });
        return command;
    }

    /// <summary>What the demo showed, in words, and where its files are.</summary>
    internal static string Summary(string folder, DistillationDemo.Row kd, DistillationDemo.Row sft, bool mesh)
    {
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        string Pct(double? v) => v is { } x ? x.ToString("P1", invariant) : "–";
        var runs = mesh ? Path.Combine(folder, "mesh-runs") : Path.Combine(folder, "runs");
        return string.Join("\n",
            $"What it showed: the same 2-layer student, trained for {DistillationDemo.StudentSteps} steps on the same 160 sentences, learns more from the",
            $"teacher's distributions (KD) than from the sentences alone (SFT): held-out perplexity {kd.Perplexity.ToString("F3", invariant)} vs {sft.Perplexity.ToString("F3", invariant)},",
            $"KL to the teacher {kd.KlToTeacher?.ToString("F4", invariant)} vs {sft.KlToTeacher?.ToString("F4", invariant)}; its most likely next token is the teacher's {Pct(kd.Top1Agreement)} vs {Pct(sft.Top1Agreement)} of the time,",
            $"and it prefers the grammatical verb in {Pct(kd.AgreementAccuracy)} vs {Pct(sft.AgreementAccuracy)} of the 96 subject–verb probes.",
            $"Files: the teacher in {Path.Combine(folder, "teacher")}; each student run (model, metrics.jsonl, checkpoints) under {runs};",
            $"this table in {Path.Combine(folder, mesh ? "demo_results_mesh.md" : "demo_results.md")}; the two students' loss curves in {Path.Combine(folder, "demo-loss.png")} (and .svg).",
            "Next: scripts/distill train --config configs/tiny-kd.yaml (a KD run on the same models; `distill configs ls` lists more recipes).");
    }

    /// <summary>
    /// Starts controller, trainer and (once the demo's teacher exists) teacher on free loopback
    /// ports, and returns a trainer that submits each student run through the controller. The KD
    /// run asks the teacher service for top-64 signals with tail (dense logits never cross the network).
    /// </summary>
    private static async Task<DistillationDemo.StudentTrainer> StartMeshAsync(string folder, List<WebApplication> apps, TextWriter log, CancellationToken cancellationToken)
    {
        var (trainer, trainerAddress) = await ServiceHost.StartAsync(0, b => b.AddTrainerService(), a => a.MapTrainerService(),
            new Dictionary<string, string?> { ["Trainer:RunsDirectory"] = Path.Combine(folder, "mesh-runs") }, quiet: true, cancellationToken);
        apps.Add(trainer);
        var (controller, controllerAddress) = await ServiceHost.StartAsync(0, b => b.AddControllerService(), a => a.MapControllerService(),
            new Dictionary<string, string?> { ["Controller:RunsDirectory"] = Path.Combine(folder, "mesh-controller"), ["Controller:Trainer"] = trainerAddress }, quiet: true, cancellationToken);
        apps.Add(controller);
        log.WriteLine($"mesh: controller {controllerAddress}, trainer {trainerAddress}");
        string? teacherAddress = null;
        return async (config, progress, token) =>
        {
            var spec = TrainConfigLoader.Normalized(config);
            spec.Remove("output_dir"); // the trainer's runs folder holds it
            var mesh = new System.Text.Json.Nodes.JsonObject { ["trainer"] = trainerAddress };
            if (config.Teachers.Count > 0)
            {
                if (teacherAddress is null)
                {
                    var (teacher, address) = await ServiceHost.StartTeacherAsync(config.Teachers[0].Model, null, 0, null, quiet: true, token);
                    apps.Add(teacher);
                    teacherAddress = address;
                    log.WriteLine($"mesh: teacher {teacherAddress}");
                }

                mesh["teacher"] = teacherAddress;
                spec["signal"] = new System.Text.Json.Nodes.JsonObject { ["format"] = "topk", ["k"] = 64, ["precision"] = "fp32" };
            }

            spec["mesh"] = mesh;
            using var channel = GrpcChannel.ForAddress(controllerAddress);
            var client = new RunsService.RunsServiceClient(channel);
            var runId = $"demo-{config.Recipe.Replace('_', '-')}-{DateTime.UtcNow:HHmmss}-{Guid.NewGuid().ToString("N")[..4]}";
            var run = await client.SubmitAsync(new SubmitRequest { RunId = runId, SpecYaml = spec.ToJsonString() }, cancellationToken: token);
            using var call = client.Watch(new WatchRunRequest { RunId = run.RunId }, cancellationToken: token);
            Run? final = null;
            while (await call.ResponseStream.MoveNext(token))
            {
                if (call.ResponseStream.Current is { EventCase: RunEvent.EventOneofCase.Snapshot, Phase: RunPhase.Succeeded or RunPhase.Failed or RunPhase.Cancelled } end)
                    final = end.Snapshot;
                else if (call.ResponseStream.Current is { EventCase: RunEvent.EventOneofCase.Train, Train.Step: > 0 } step)
                    progress?.Report(RunView.TrainEventOf(step.Train));
            }

            if (final?.Phase != RunPhase.Succeeded)
                throw new InvalidOperationException($"mesh run {run.RunId} ended {final?.Phase}: {final?.Reason}");
            log.WriteLine($"mesh: run {run.RunId} succeeded{(final.Reason.Length > 0 ? $": {final.Reason}" : "")}");
            return Path.Combine(run.OutputDir, "model");
        };
    }
}
