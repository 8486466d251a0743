using System.CommandLine;
using System.Diagnostics;
using Distill.Mesh.Modeling.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill bench forward --config C.json</c>: forward-pass tokens/s next to the machine's matmul
/// FLOP/s measured in the same run, per dtype, and the share of that peak the forward achieves.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "HF config.json of the model to build (random weights)", Required = true };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 1 };
        var sequence = new Option<int>("--seq") { DefaultValueFactory = _ => 512 };
        var iterations = new Option<int>("--iterations") { DefaultValueFactory = _ => 3 };
        var dtypes = new Option<string>("--dtypes") { DefaultValueFactory = _ => "float32,bfloat16" };
        var threads = new Option<int>("--threads") { Description = "torch intra-op threads (default: torch's choice)" };
        var forward = new Command("forward", "Forward-pass throughput vs. measured matmul peak") { config, batch, sequence, iterations, dtypes, threads };
        forward.SetAction((parse, output) =>
        {
            if (parse.GetValue(threads) is > 0 and var n)
                torch.set_num_threads(n);
            var modelConfig = ModelConfigs.Load(parse.GetValue(config)!);
            var (b, t, iters) = (parse.GetValue(batch), parse.GetValue(sequence), Math.Max(1, parse.GetValue(iterations)));
            output.WriteLine($"model {modelConfig.ModelType}: {modelConfig.NumHiddenLayers} layers, hidden {modelConfig.HiddenSize}, vocab {modelConfig.VocabSize}; batch {b} × seq {t}; {torch.get_num_threads()} threads");
            output.WriteLine("| dtype | matmul GFLOP/s | forward tokens/s | forward GFLOP/s | share of matmul peak |");
            output.WriteLine("|---|---:|---:|---:|---:|");
            foreach (var name in parse.GetValue(dtypes)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var dtype = CommandRunner.ParseDType(name);
                var peak = MatmulGflops(dtype);
                var (tokensPerSecond, flopsPerToken) = ForwardThroughput(modelConfig, dtype, b, t, iters);
                var achieved = tokensPerSecond * flopsPerToken / 1e9;
                output.WriteLine($"| {name} | {peak:F1} | {tokensPerSecond:F1} | {achieved:F1} | {achieved / peak:P1} |");
            }

            output.WriteLine("forward FLOPs/token = 2 × (matmul parameters incl. the output head) + 2 × layers × seq × attention width (causal average)");
            return 0;
        });
        return new Command("bench", "Benchmarks (print tables; not tests)") { forward, TrainBenchCommand.Create(), KdLossBenchCommand.Create(), TeacherBenchCommand.Create(), ExtractBenchCommand.Create(), DataBenchCommand.Create() };
    }

    /// <summary>Best of several timed 1024³ matmuls (after a warm-up), in GFLOP/s.</summary>
    internal static double MatmulGflops(ScalarType dtype)
    {
        const int n = 1024;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var a = torch.randn(n, n).to_type(dtype);
        var c = torch.randn(n, n).to_type(dtype);
        a.matmul(c);
        var best = double.MaxValue;
        var total = Stopwatch.StartNew();
        for (var i = 0; i < 20 && (i < 3 || total.Elapsed.TotalSeconds < 2); i++)
        {
            var watch = Stopwatch.StartNew();
            a.matmul(c);
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }

        return 2.0 * n * n * n / best / 1e9;
    }

    private static (double TokensPerSecond, double FlopsPerToken) ForwardThroughput(DecoderConfig config, ScalarType dtype, int batch, int length, int iterations)
    {
        using var model = new CausalLanguageModel(config, dtype);
        model.InitializeWeights(0);
        model.eval();
        using var noGrad = torch.no_grad();
        using var ids = torch.randint(0, config.VocabSize, [batch, length]);
        using (model.Forward(ids))
        {
            // warm-up
        }

        var watch = Stopwatch.StartNew();
        for (var i = 0; i < iterations; i++)
        {
            using var logits = model.Forward(ids);
        }

        var tokensPerSecond = (double)batch * length * iterations / watch.Elapsed.TotalSeconds;
        return (tokensPerSecond, ForwardFlopsPerToken(model, length));
    }

    /// <summary>
    /// Forward FLOPs per token at sequence length <paramref name="length"/>: 2 × the matmul
    /// parameters (the output head included, LoRA adapters not) + the causal attention's 2 × layers × length × width.
    /// </summary>
    internal static double ForwardFlopsPerToken(CausalLanguageModel model, int length)
    {
        var config = model.Config;
        // Each token runs only its top-k experts: expert weights count k / E.
        var expertShare = config.ExpertCount > 0 ? (double)config.ExpertsPerToken / config.ExpertCount : 1.0;
        var matmulParameters = model.named_parameters()
            .Where(p => p.parameter.dim() == 2 && p.name != "model.embed_tokens.weight" && !p.name.Contains(".lora_", StringComparison.Ordinal))
            .Sum(p => p.parameter.numel() * (p.name.Contains(".experts.", StringComparison.Ordinal) ? expertShare : 1.0))
            + (config.TieWordEmbeddings ? (double)config.VocabSize * config.HiddenSize : 0);
        var attention = 2.0 * config.NumHiddenLayers * length * config.NumAttentionHeads * config.HeadDimension;
        return 2.0 * matmulParameters + attention;
    }
}
