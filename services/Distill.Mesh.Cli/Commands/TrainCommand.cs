using System.CommandLine;
using System.Diagnostics;
using Distill.Mesh.Cli.Display;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Clients.Registry;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Recipes;
using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Cli.Commands;

/// <summary><c>distill train --config X.yaml [key=value ...]</c>: runs a recipe locally with a live progress line.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "recipe YAML (see configs/)", Required = true };
        var overrides = new Argument<string[]>("overrides") { Description = "dotted overrides, e.g. training.optimizer.lr=1e-4", Arity = ArgumentArity.ZeroOrMore };
        var restart = new Option<bool>("--restart") { Description = "the output folder holds an earlier run: delete what it wrote there and start over" };
        var fork = new Option<string?>("--fork") { Description = "continue from the output folder's newest checkpoint in this new folder, with this config (the original run stays as it is)" };
        var command = new Command("train", "Train a student (kd, sft, seq_kd, gkd) from a YAML config; Ctrl-C checkpoints and stops; the same command resumes") { config, overrides, restart, fork };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            try
            {
                var (settings, resolved) = TrainConfigLoader.Load(parse.GetValue(config)!, parse.GetValue(overrides) ?? []);
                if (parse.GetValue(restart) && parse.GetValue(fork) is not null)
                    throw new ArgumentException("--restart and --fork exclude each other");
                if (parse.GetValue(fork) is { } forkInto)
                {
                    var from = settings.OutputDir;
                    settings.OutputDir = Path.GetFullPath(forkInto);
                    resolved = TrainConfigLoader.Normalized(settings);
                    error.WriteLine($"forked {from} at step {RunProvenance.Fork(from, settings)} into {settings.OutputDir}");
                }

                TrainResult result;
                // The live display ends (its last frame drawn) before anything else is printed.
                using (var display = ProgressDisplays.For(error))
                {
                    var progress = new TrainView(display);
                    result = await RecipeRunner.RunAsync(settings, parse.GetValue(restart) ? RerunPolicy.Restart : RerunPolicy.Resume, progress, cancellationToken);
                    if (!result.Completed)
                        progress.Stopped("interrupted; checkpoint written");
                }

                output.WriteLine(result.Completed
                    ? $"done: {result.Steps} steps; {(result.AdapterPath is not null ? $"adapter {result.AdapterPath}" : $"model {result.ModelPath}")}; metrics {Path.Combine(result.OutputDir, "metrics.jsonl")}; plots {Path.Combine(result.OutputDir, "loss.png")}, {Path.Combine(result.OutputDir, "loss.svg")}"
                    : $"stopped at step {result.Steps}; checkpoint written, run the same command to resume");
                if (result.FinalEval is { } eval)
                    output.WriteLine($"eval: perplexity {eval.Perplexity:F3}{(eval.KlToTeacher is { } kl ? $", KL to teacher {kl:F4}, top-1 agreement {eval.Top1Agreement:P1}" : "")} over {eval.Tokens} tokens");
                if (result.Completed && settings.Publish is { Name.Length: > 0 } publish)
                {
                    // The registry's bearer token: the environment's, else for a loopback registry the one `distill up` wrote.
                    var registry = publish.Registry ?? Environment.GetEnvironmentVariable("DISTILL_REGISTRY") ?? PublishSettings.LocalRegistry;
                    using var channel = MeshTls.CreateChannel(registry, Environment.GetEnvironmentVariable("DISTILL_TLS_TRUST"), token: MeshCliOptions.TokenFor(registry, null));
                    var artifact = await ResultPublisher.PublishAsync(settings, resolved, result, Path.GetFileName(settings.OutputDir), channel,
                        [], cancellationToken);
                    output.WriteLine($"pushed {artifact.Manifest.Name}:{artifact.Version} to {registry} ({artifact.Id[..12]})");
                }
                return result.Completed ? 0 : 130;
            }
            catch (Grpc.Core.RpcException e)
            {
                var (settings, _) = TrainConfigLoader.Load(parse.GetValue(config)!, parse.GetValue(overrides) ?? []);
                error.WriteLine($"error: the run finished but the push failed: {MeshErrors.Describe(e, "registry", settings.Publish?.Registry ?? Environment.GetEnvironmentVariable("DISTILL_REGISTRY") ?? PublishSettings.LocalRegistry)}");
                return 1;
            }
            catch (Exception e) when (e is ConfigException or IncompatibleTeacherException or TrainingDivergedException or FileNotFoundException or DirectoryNotFoundException
                or Training.Datasets.DatasetFormatException or Training.Metrics.MetricsFormatException or Modeling.Checkpoints.CheckpointFormatException or Modeling.Models.ModelConfigException
                or Modeling.Tokenization.TokenizerFormatException or Modeling.Adapters.AdapterFormatException or ArgumentException)
            {
                error.WriteLine($"error: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
