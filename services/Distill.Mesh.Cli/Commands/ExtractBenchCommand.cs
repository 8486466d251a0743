using System.CommandLine;
using System.Diagnostics;
using Distill.Mesh.Cli.Hosting;
using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.Clients.Registry;
using Distill.Mesh.Registry.Extensions;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Modeling.Extraction;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill bench extract</c>: exact vs. randomized truncated SVD of weight-delta-like matrices
/// 1k–8k wide, timed side by side in one run, with the randomized error against the exact
/// (Eckart–Young optimal) error.
/// </summary>
internal static class ExtractBenchCommand
{
    public static Command Create()
    {
        var sizes = new Option<string>("--sizes") { Description = "matrix widths (square matrices)", DefaultValueFactory = _ => "1024,2048,4096,8192" };
        var rank = new Option<int>("--rank") { DefaultValueFactory = _ => 64 };
        var powerIterations = new Option<int>("--power-iterations") { DefaultValueFactory = _ => 2 };
        var threads = new Option<int>("--threads") { Description = "torch intra-op threads (default: torch's choice)" };
        var layer = new Option<bool>("--layer") { Description = "also time one decoder layer of a Llama-3.2-1B-shaped pair (7 matrices, rank 16)", DefaultValueFactory = _ => true };
        var registryMb = new Option<int>("--registry-mb") { Description = "size of the artifact pushed and pulled through the registry (0: skip)", DefaultValueFactory = _ => 512 };
        var command = new Command("extract", "Exact vs randomized SVD for LoRA extraction (time, error ratio); registry push/pull MB/s on loopback") { sizes, rank, powerIterations, threads, layer, registryMb };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(threads) is > 0 and var n)
                torch.set_num_threads(n);
            var r = parse.GetValue(rank);
            output.WriteLine($"rank {r}, {parse.GetValue(powerIterations)} power iterations, float32, {torch.get_num_threads()} threads; matrices: rank-w/4 product with a decaying spectrum plus 1 % noise (a fine-tuning delta's shape)");
            output.WriteLine("| width | exact s | randomized s | speed-up | exact rel. error | randomized rel. error | error ratio |");
            output.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var width in parse.GetValue(sizes)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(int.Parse))
            {
                using var scope = torch.NewDisposeScope();
                var delta = DeltaLike(width, width, seed: width);
                var norm = delta.norm().item<float>();
                var (exactSeconds, exactError) = Time(() => TruncatedSvd.Compute(delta, r, SvdMethod.Exact), delta, norm);
                var (randomSeconds, randomError) = Time(() => TruncatedSvd.Compute(delta, r, SvdMethod.Randomized, powerIterations: parse.GetValue(powerIterations), seed: 1), delta, norm);
                output.WriteLine($"| {width} | {exactSeconds:F2} | {randomSeconds:F2} | {exactSeconds / randomSeconds:F1}× | {exactError:F5} | {randomError:F5} | {randomError / exactError:F4} |");
            }

            output.WriteLine("error = ‖Δ − U·S·Vᵀ‖_F / ‖Δ‖_F; the exact SVD's error is the Eckart–Young optimum, so the ratio is ≥ 1");
            if (parse.GetValue(layer))
                LayerTime(output, parse.GetValue(powerIterations));
            if (parse.GetValue(registryMb) is > 0 and var megabytes)
                await RegistryThroughputAsync(output, megabytes, cancellationToken);
            return 0;
        });
        return command;
    }

    /// <summary>
    /// The factorisations of one decoder layer of a Llama-3.2-1B-shaped pair (hidden 2048, 8 KV
    /// heads of 64, MLP 8192) at rank 16, both methods, and the time for its 16 layers.
    /// </summary>
    private static void LayerTime(TextWriter output, int powerIterations)
    {
        (string Name, int Rows, int Columns)[] shapes =
            [("q_proj", 2048, 2048), ("k_proj", 512, 2048), ("v_proj", 512, 2048), ("o_proj", 2048, 2048), ("gate_proj", 8192, 2048), ("up_proj", 8192, 2048), ("down_proj", 2048, 8192)];
        double exact = 0, randomized = 0;
        foreach (var (name, rows, columns) in shapes)
        {
            using var scope = torch.NewDisposeScope();
            var delta = DeltaLike(rows, columns, seed: rows * 31 + columns);
            var watch = Stopwatch.StartNew();
            using (TruncatedSvd.Compute(delta, 16, SvdMethod.Exact))
                exact += watch.Elapsed.TotalSeconds;
            watch.Restart();
            using (TruncatedSvd.Compute(delta, 16, SvdMethod.Randomized, powerIterations: powerIterations, seed: 1))
                randomized += watch.Elapsed.TotalSeconds;
        }

        output.WriteLine();
        output.WriteLine("one decoder layer of a Llama-3.2-1B-shaped pair (q, k, v, o, gate, up, down), rank 16, factorisation only:");
        output.WriteLine("| method | s per layer | s for 16 layers |");
        output.WriteLine("|---|---:|---:|");
        output.WriteLine($"| exact | {exact:F2} | {exact * 16:F0} |");
        output.WriteLine($"| randomized | {randomized:F2} | {randomized * 16:F0} |");
    }

    /// <summary>Pushes and pulls one artifact through a registry on a loopback port (HTTP/2, 1 MiB chunks, SHA-256 on both sides).</summary>
    private static async Task RegistryThroughputAsync(TextWriter output, int megabytes, CancellationToken cancellationToken)
    {
        var work = Path.Combine(Path.GetTempPath(), $"distill-bench-registry-{Guid.NewGuid():N}");
        var source = Path.Combine(work, "source");
        Directory.CreateDirectory(source);
        try
        {
            File.WriteAllText(Path.Combine(source, "config.json"), "{}");
            using (var weights = torch.randn(megabytes, 1 << 18))
                Modeling.Checkpoints.SafetensorsWriter.Write(Path.Combine(source, "model.safetensors"), [KeyValuePair.Create("weights", weights)]);

            var (app, address) = await ServiceHost.StartAsync(0, b => b.AddRegistryService(), a => a.MapRegistryService(),
                new Dictionary<string, string?> { ["Registry:Root"] = Path.Combine(work, "registry") }, quiet: true, cancellationToken);
            try
            {
                using var channel = MeshTls.CreateChannel(address, null);
                var client = new RegistryClient(new RegistryService.RegistryServiceClient(channel));
                var watch = Stopwatch.StartNew();
                var manifest = RegistryClient.ManifestOf(source, "bench");
                var hashing = watch.Elapsed.TotalSeconds;
                await client.PushAsync(source, manifest, cancellationToken: cancellationToken);
                var push = watch.Elapsed.TotalSeconds - hashing;
                watch.Restart();
                await client.PullAsync("bench", Path.Combine(work, "pulled"), cancellationToken: cancellationToken);
                var pull = watch.Elapsed.TotalSeconds;
                output.WriteLine();
                output.WriteLine($"registry on loopback ({address}), one {megabytes} MiB artifact:");
                output.WriteLine("| step | seconds | MB/s |");
                output.WriteLine("|---|---:|---:|");
                output.WriteLine($"| client hashes the folder | {hashing:F2} | {megabytes / hashing:F0} |");
                output.WriteLine($"| push (stream, verify, commit) | {push:F2} | {megabytes / push:F0} |");
                output.WriteLine($"| pull (stream, re-hash on both sides, rename) | {pull:F2} | {megabytes / pull:F0} |");
            }
            finally
            {
                await app.StopAsync(CancellationToken.None);
                await app.DisposeAsync();
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>G₁·diag(1/√(1+i))·G₂ of rank min(rows, columns)/4, scaled, plus 1 % Gaussian noise.</summary>
    private static Tensor DeltaLike(int rows, int columns, long seed)
    {
        using var generator = new Generator((ulong)seed);
        var k = Math.Max(1, Math.Min(rows, columns) / 4);
        var spectrum = (1.0 / (torch.arange(k, dtype: ScalarType.Float32) + 1).sqrt()).unsqueeze(0);
        var product = (torch.randn(rows, k, generator: generator) * spectrum).matmul(torch.randn(k, columns, generator: generator)) / Math.Sqrt(columns);
        var noise = torch.randn(rows, columns, generator: generator) * (0.01 * product.std().item<float>());
        return product + noise;
    }

    private static (double Seconds, double Error) Time(Func<LowRank> factorize, Tensor delta, float norm)
    {
        var watch = Stopwatch.StartNew();
        using var low = factorize();
        var seconds = watch.Elapsed.TotalSeconds;
        using var residual = delta - low.Product();
        return (seconds, residual.norm().item<float>() / norm);
    }
}
