using System.CommandLine;
using System.Diagnostics;
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
        var command = new Command("extract", "Exact vs randomized SVD for LoRA extraction: time and error ratio") { sizes, rank, powerIterations, threads };
        command.SetAction((parse, output) =>
        {
            if (parse.GetValue(threads) is > 0 and var n)
                torch.set_num_threads(n);
            var r = parse.GetValue(rank);
            output.WriteLine($"rank {r}, {parse.GetValue(powerIterations)} power iterations, float32, {torch.get_num_threads()} threads; matrices: rank-w/4 product with a decaying spectrum plus 1 % noise (a fine-tuning delta's shape)");
            output.WriteLine("| width | exact s | randomized s | speed-up | exact rel. error | randomized rel. error | error ratio |");
            output.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var width in parse.GetValue(sizes)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(int.Parse))
            {
                using var scope = torch.NewDisposeScope();
                var delta = DeltaLike(width, seed: width);
                var norm = delta.norm().item<float>();
                var (exactSeconds, exactError) = Time(() => TruncatedSvd.Compute(delta, r, SvdMethod.Exact), delta, norm);
                var (randomSeconds, randomError) = Time(() => TruncatedSvd.Compute(delta, r, SvdMethod.Randomized, powerIterations: parse.GetValue(powerIterations), seed: 1), delta, norm);
                output.WriteLine($"| {width} | {exactSeconds:F2} | {randomSeconds:F2} | {exactSeconds / randomSeconds:F1}× | {exactError:F5} | {randomError:F5} | {randomError / exactError:F4} |");
            }

            output.WriteLine("error = ‖Δ − U·S·Vᵀ‖_F / ‖Δ‖_F; the exact SVD's error is the Eckart–Young optimum, so the ratio is ≥ 1");
            return 0;
        });
        return command;
    }

    /// <summary>G₁·diag(1/√(1+i))·G₂ of rank width/4, scaled, plus 1 % Gaussian noise.</summary>
    private static Tensor DeltaLike(int width, long seed)
    {
        using var generator = new Generator((ulong)seed);
        var k = Math.Max(1, width / 4);
        var spectrum = (1.0 / (torch.arange(k, dtype: ScalarType.Float32) + 1).sqrt()).unsqueeze(0);
        var product = (torch.randn(width, k, generator: generator) * spectrum).matmul(torch.randn(k, width, generator: generator)) / Math.Sqrt(width);
        var noise = torch.randn(width, width, generator: generator) * (0.01 * product.std().item<float>());
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
