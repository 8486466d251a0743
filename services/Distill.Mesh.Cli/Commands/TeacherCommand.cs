using System.CommandLine;
using Distill.Mesh.Cli.Hosting;
using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Teacher.Caching;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Teachers;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill teacher serve</c>: the teacher service alone on a port. <c>distill teacher precompute</c>:
/// scores a dataset into the Redis cache ahead of training (offline distillation), with the keys the
/// service uses, so a later run is served from the cache.
/// </summary>
internal static class TeacherCommand
{
    public static Command Create() => new("teacher", "Serve a teacher, or precompute its signal into Redis") { Serve(), Precompute() };

    private static Command Serve()
    {
        var model = new Option<string>("--model") { Description = "teacher HF folder", Required = true };
        var port = new Option<int>("--port") { DefaultValueFactory = _ => 7101 };
        var redis = new Option<string?>("--redis") { Description = "Redis connection string (default: in-process cache)" };
        var command = new Command("serve", "Run the teacher service on 127.0.0.1:PORT (HTTP/2, gRPC)") { model, port, redis };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var (app, address) = await ServiceHost.StartTeacherAsync(Path.GetFullPath(parse.GetValue(model)!), null, parse.GetValue(port), parse.GetValue(redis), quiet: false, cancellationToken);
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
        var model = new Option<string>("--model") { Description = "teacher HF folder", Required = true };
        var dataset = new Option<string>("--dataset") { Description = "JSON/JSONL/Parquet dataset", Required = true };
        var redis = new Option<string>("--redis") { Description = "Redis connection string", Required = true };
        var k = new Option<int>("--k") { DefaultValueFactory = _ => 64 };
        var temperature = new Option<double>("--temperature") { DefaultValueFactory = _ => 1.0 };
        var precision = new Option<string>("--precision") { Description = "fp32, fp16, bf16, q8", DefaultValueFactory = _ => "q8" };
        var vocabulary = new Option<int>("--vocabulary") { Description = "ids shared with the student (default: the teacher's vocabulary)" };
        var maxLength = new Option<int>("--max-length") { DefaultValueFactory = _ => 2048 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 8 };
        var command = new Command("precompute", "Score a dataset into the Redis cache ahead of training") { model, dataset, redis, k, temperature, precision, vocabulary, maxLength, batch };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var folder = parse.GetValue(model)!;
            using var teacher = InProcessTeacher.Load(folder);
            var tokenizer = TokenizerLoader.Load(folder);
            var records = await DatasetFile.ReadAsync(parse.GetValue(dataset)!, cancellationToken);
            var builder = new ExampleBuilder(tokenizer, DatasetLayouts.Detect(records), new ExampleOptions { MaxLength = parse.GetValue(maxLength) });
            var examples = records.Select(builder.Build).Where(e => e.InputIds.Length >= 2).ToList();
            var signalPrecision = parse.GetValue(precision)!.ToLowerInvariant() switch
            {
                "fp32" => SignalPrecision.Fp32,
                "fp16" => SignalPrecision.Fp16,
                "bf16" => SignalPrecision.Bf16,
                "q8" => SignalPrecision.Q8,
                var other => throw new ArgumentException($"--precision '{other}' is not one of fp32, fp16, bf16, q8"),
            };
            var request = new Training.Teachers.SignalRequest(SignalFormat.TopK, parse.GetValue(vocabulary) is > 0 and var v ? v : teacher.Model.Config.VocabSize,
                parse.GetValue(temperature), parse.GetValue(k), TopKMode.Tail, Precision: signalPrecision);
            using var connection = await ConnectionMultiplexer.ConnectAsync(parse.GetValue(redis)!);
            var cache = new RedisSignalCache(connection, TimeSpan.FromDays(7), NullLogger<RedisSignalCache>.Instance);
            long done = 0, bytes = 0;
            foreach (var chunk in examples.Chunk(Math.Max(1, parse.GetValue(batch))))
            {
                var encoded = new List<(string Key, EncodedSignal Signal)>();
                using (var padded = Batching.Collate(chunk, 0))
                using (var rows = teacher.Score(padded, request))
                {
                    var stride = padded.InputIds.shape[1] - 1;
                    for (var i = 0; i < chunk.Length; i++)
                    {
                        var signal = SignalCodec.Encode(rows.Block(i * stride, chunk[i].InputIds.Length - 1), signalPrecision, request.Vocabulary);
                        encoded.Add((SignalCacheKey.For(teacher.Describe(), chunk[i].InputIds, request, signalPrecision), signal));
                    }
                }

                foreach (var (key, signal) in encoded)
                {
                    await cache.SetAsync(key, signal, cancellationToken);
                    bytes += signal.PayloadBytes;
                }

                done += chunk.Length;
                error.Write($"\rprecompute {done}/{examples.Count} sequences, {bytes / 1e6:F1} MB   ");
            }

            error.WriteLine();
            parse.InvocationConfiguration.Output.WriteLine($"cached {examples.Count} sequences ({bytes / 1e6:F1} MB of signal, {bytes / (double)Math.Max(1, examples.Sum(e => e.InputIds.Length - 1)):F1} B per token)");
            return 0;
        });
        return command;
    }
}
