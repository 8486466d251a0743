using System.CommandLine;
using System.Diagnostics;
using Distill.Mesh.Cli.Hosting;
using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Training.Datasets;
using Distill.Mesh.Training.Teachers;
using Grpc.Net.Client;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill bench teacher</c>: in one run, tokens/s of the in-process forward + top-k, of Score over
/// gRPC on loopback (same model, same batches, cold cache), and of the same requests served from the
/// cache; bytes per scored token per value precision; KL between decoded and exact signals.
/// </summary>
internal static class TeacherBenchCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "teacher HF folder", DefaultValueFactory = _ => Path.Combine(".distill", "demo", "teacher") };
        var sequences = new Option<int>("--sequences") { DefaultValueFactory = _ => 256 };
        var length = new Option<int>("--length") { DefaultValueFactory = _ => 128 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 16 };
        var k = new Option<int>("--k") { DefaultValueFactory = _ => 64 };
        var command = new Command("teacher", "Teacher serving throughput: in process vs gRPC vs cache; bytes per token; decoded KL") { model, sequences, length, batch, k };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var folder = Path.GetFullPath(parse.GetValue(model)!);
            if (!File.Exists(Path.Combine(folder, "config.json")))
            {
                parse.InvocationConfiguration.Error.WriteLine($"error: no teacher at {folder} (run `distill demo` first, or pass --model)");
                return 1;
            }

            using var teacher = InProcessTeacher.Load(folder);
            var vocab = teacher.Model.Config.VocabSize;
            var (count, width, size, topK) = (parse.GetValue(sequences), parse.GetValue(length), parse.GetValue(batch), Math.Min(parse.GetValue(k), vocab));
            var random = new Random(1);
            var examples = Enumerable.Range(0, count).Select(_ =>
            {
                var ids = Enumerable.Range(0, width).Select(_ => random.Next(vocab)).ToArray();
                return new TokenizedExample(ids, ids.Select(i => (long)i).ToArray());
            }).ToList();
            var batches = examples.Chunk(size).Select(c => Batching.Collate(c, 0)).ToList();
            // Warm-up (JIT, allocator, gRPC connection) on sequences outside the measured set.
            using var warmup = Batching.Collate(examples.Take(size).Select(e => new TokenizedExample(e.InputIds.Reverse().ToArray(), e.Labels)).ToList(), 0);
            var request = new SignalRequest(SignalFormat.TopK, vocab, 1.0, topK, Precision: SignalPrecision.Q8);
            var scored = (double)count * (width - 1);

            // In process: forward + top-k, as the service computes it.
            using (teacher.Score(warmup, request))
            {
            }

            var watch = Stopwatch.StartNew();
            foreach (var b in batches)
            {
                using var rows = teacher.Score(b, request);
            }

            var inProcess = scored / watch.Elapsed.TotalSeconds;

            var (app, address) = await ServiceHost.StartTeacherAsync(folder, teacher, 0, null, quiet: true, cancellationToken);
            await using (app)
            {
                using var channel = GrpcChannel.ForAddress(address);
                var remote = await RemoteTeacher.ConnectAsync(channel.CreateCallInvoker(), cancellationToken: cancellationToken);
                using (await remote.ScoreAsync(warmup, request, cancellationToken))
                {
                }

                async Task<double> Pass()
                {
                    var timer = Stopwatch.StartNew();
                    foreach (var b in batches)
                    {
                        using var rows = await remote.ScoreAsync(b, request, cancellationToken);
                    }

                    return scored / timer.Elapsed.TotalSeconds;
                }

                var overGrpc = await Pass();
                var fromCache = await Pass();
                output.WriteLine($"teacher {teacher.Model.Config.ModelType}, vocab {vocab}, {count} sequences × {width} tokens, batch {size}, top-{topK}, q8");
                output.WriteLine("| path | scored tokens/s | vs in-process |");
                output.WriteLine("|---|---:|---:|");
                output.WriteLine($"| in-process forward + top-k | {inProcess:N0} | 1.00× |");
                output.WriteLine($"| Score over gRPC (cold cache) | {overGrpc:N0} | {overGrpc / inProcess:F2}× |");
                output.WriteLine($"| Score over gRPC (cache hits) | {fromCache:N0} | {fromCache / inProcess:F2}× |");
                await app.StopAsync(cancellationToken);
            }

            // Bytes per scored token and decoded-vs-exact KL, per precision, on the first batch.
            using var exactRows = teacher.Score(batches[0], request);
            var exact = (TopKTeacherSignal)exactRows.Block(0, exactRows.Rows);
            output.WriteLine();
            output.WriteLine("| precision | bytes per scored token | KL(exact ‖ decoded), top-k + tail buckets |");
            output.WriteLine("|---|---:|---:|");
            foreach (var precision in Enum.GetValues<SignalPrecision>())
            {
                using var scope = torch.NewDisposeScope();
                var encoded = SignalCodec.Encode(exact, precision, vocab);
                var decoded = (TopKTeacherSignal)SignalCodec.Decode(encoded);
                // Both sides normalised over the k + 1 buckets (quantised values need not sum to exactly 1).
                var p = Buckets(exact.LogProbs, exact.LogProbs.exp().sum(-1).neg().add(1).clamp_min(1e-30)).log_softmax(-1);
                var q = Buckets(decoded.LogProbs, decoded.TailMass!.clamp_min(1e-30)).log_softmax(-1);
                var kl = Math.Max(0, Divergences.Kl(p, q).mean().item<float>()); // float rounding can dip below 0 by ~1e-9
                output.WriteLine($"| {precision} | {(double)encoded.PayloadBytes / encoded.Positions:F1} | {kl:E2} |");
            }

            foreach (var b in batches)
                b.Dispose();
            return 0;
        });
        return command;
    }

    private static Tensor Buckets(Tensor logProbs, Tensor tail) =>
        torch.cat([logProbs.to_type(ScalarType.Float32), tail.to_type(ScalarType.Float32).log().unsqueeze(-1)], -1);
}
