using System.CommandLine;
using Distill.Mesh.Cli.Display;
using Distill.Mesh.Cli.Hosting;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Specs.Runs;
using Distill.Mesh.Teacher.Extensions;
using Distill.Mesh.Teacher.Jobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill teacher serve</c>: the teacher service alone on a port. <c>distill teacher precompute</c>:
/// the teacher's precompute job on this machine — a kd run's training batches scored into Redis
/// ahead of the run, through the path the service's Score uses, so the run is served from the cache.
/// </summary>
internal static class TeacherCommand
{
    public static Command Create() => new("teacher", "Serve a teacher, or precompute its signal into Redis") { Serve(), Precompute() };

    private static Command Serve()
    {
        var model = new Option<string>("--model") { Description = "teacher HF folder", Required = true };
        var port = new Option<int>("--port") { DefaultValueFactory = _ => 7101 };
        var redis = new Option<string?>("--redis") { Description = "Redis connection string (default: in-process cache)" };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string>("--dtype") { Description = "float32 or bfloat16", DefaultValueFactory = _ => "float32" };
        var command = new Command("serve", "Run the teacher service on 127.0.0.1:PORT (HTTP/2, gRPC)") { model, port, redis, device, dtype };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var (app, address) = await ServiceHost.StartAsync(parse.GetValue(port), b => b.AddTeacherService(), a => a.MapTeacherService(), new Dictionary<string, string?>
            {
                ["Teacher:Model"] = Path.GetFullPath(parse.GetValue(model)!),
                ["Teacher:Redis"] = parse.GetValue(redis) ?? "",
                ["Teacher:Device"] = parse.GetValue(device),
                ["Teacher:Dtype"] = parse.GetValue(dtype),
            }, quiet: false, cancellationToken);
            parse.InvocationConfiguration.Output.WriteLine($"teacher service listening on {address} (Ctrl-C stops)");
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }

            await app.StopAsync(CancellationToken.None);
            await app.DisposeAsync();
            return 0;
        });
        return command;
    }

    private static Command Precompute()
    {
        var spec = new Option<string>("--spec") { Description = "the kd run spec (YAML) whose training the cache is for: its dataset, student tokenizer, signal and batches", Required = true };
        var model = new Option<string>("--model") { Description = "teacher HF folder (default: the spec's first teacher)" };
        var redis = new Option<string>("--redis") { Description = "Redis connection string (the teacher services of the run read the same)", Required = true };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var shard = new Option<int?>("--shard-index") { Description = "score only this shard of the spec's precompute.shards (default: all of them, in turn)" };
        var overrides = new Argument<string[]>("overrides") { Description = "dotted overrides of the spec", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("precompute", "Score a kd run's training batches into Redis ahead of the run (the same sequences and signal the run will ask for)") { spec, model, redis, device, shard, overrides };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var path = Path.GetFullPath(parse.GetValue(spec)!);
            try
            {
                var parsed = RunSpecLoader.Parse(File.ReadAllText(path), parse.GetValue(overrides) ?? [], Path.GetDirectoryName(path), path);
                var teacher = parse.GetValue(model) is { } folder ? Path.GetFullPath(folder)
                    : parsed.Spec.Train.Teachers.FirstOrDefault()?.Model ?? throw new ArgumentException($"{path} has no teacher; give --model");
                // The canonical spec (absolute paths, overrides applied) is what the job reads.
                var canonical = Path.Combine(Path.GetTempPath(), $"distill-precompute-{Guid.NewGuid():N}.json");
                File.WriteAllText(canonical, parsed.Text);
                // On a terminal, a bar per shard (micro-batches), with the host's log above the bars;
                // in a log, the job's own lines (one every 50 micro-batches).
                var display = ProgressDisplays.For(error);
                var live = display is LiveProgressDisplay;
                var phases = new Dictionary<int, IProgressPhase>();
                var watcher = new Progress<PrecomputeProgress>(p =>
                {
                    lock (phases)
                    {
                        if (!phases.TryGetValue(p.Shard, out var phase))
                            phases[p.Shard] = phase = display.Start($"precompute shard {p.Shard + 1}/{p.Shards}", p.Total, ProgressUnit.Of("micro-batches"));
                        phase.Set(p.Done);
                        if (p.Done >= p.Total)
                            phase.Complete();
                    }
                });
                using (display)
                {
                    try
                    {
                        var shards = parse.GetValue(shard) is { } one ? [one] : Enumerable.Range(0, parsed.Spec.Precompute.Shards).ToArray();
                        foreach (var index in shards)
                        {
                            var (app, _) = await ServiceHost.StartAsync(0, b =>
                            {
                                b.AddTeacherService();
                                if (live)
                                    b.Services.AddSingleton<IProgress<PrecomputeProgress>>(watcher);
                            }, a => a.MapTeacherService(), new Dictionary<string, string?>
                            {
                                ["Teacher:Model"] = teacher,
                                ["Teacher:Redis"] = parse.GetValue(redis),
                                ["Teacher:Device"] = parse.GetValue(device),
                                ["Teacher:JobSpec"] = canonical,
                                ["Teacher:JobShard"] = index.ToString(System.Globalization.CultureInfo.InvariantCulture),
                            }, quiet: false, cancellationToken, live ? display.Log : null);
                            await app.WaitForShutdownAsync(cancellationToken);
                            await app.DisposeAsync();
                            var code = Environment.ExitCode;
                            Environment.ExitCode = 0;
                            if (code != 0)
                            {
                                display.Log.WriteLine($"error: precompute shard {index} of {parsed.Spec.Precompute.Shards} failed (its log is above)");
                                return code;
                            }
                        }
                    }
                    finally
                    {
                        File.Delete(canonical);
                    }
                }

                parse.InvocationConfiguration.Output.WriteLine($"precomputed {parsed.Spec.Precompute.Shards} shard(s) of {path} into {parse.GetValue(redis)}");
                return 0;
            }
            catch (Exception e) when (e is ConfigException or ArgumentException or IOException or InvalidOperationException)
            {
                error.WriteLine($"error: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
