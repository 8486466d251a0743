using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Distill.Mesh.Modeling.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill bench kd-loss</c>: peak memory and time of the chunked (fused lm_head + loss) path
/// next to the plain one (full logits, then the loss), forward and backward, with a top-k teacher
/// signal. Each case runs in its own process so its peak RSS is its own; the table compares them.
/// </summary>
internal static class KdLossBenchCommand
{
    public static Command Create()
    {
        var vocabs = new Option<string>("--vocabs") { DefaultValueFactory = _ => "32000,128256" };
        var tokens = new Option<string>("--tokens") { DefaultValueFactory = _ => "1024,2048,4096,8192" };
        var hidden = new Option<int>("--hidden") { DefaultValueFactory = _ => 2048 };
        var block = new Option<int>("--block") { Description = "positions per block of the chunked path (0: chosen from the vocabulary)", DefaultValueFactory = _ => 0 };
        var k = new Option<int>("--k") { Description = "top-k of the teacher signal", DefaultValueFactory = _ => 64 };
        var dtype = new Option<string>("--dtype") { Description = "dtype of hidden states and lm_head", DefaultValueFactory = _ => "bfloat16" };
        var casePath = new Option<string?>("--case") { Description = "internal: run one case (plain|chunked) and print its measurements", Hidden = true };
        var command = new Command("kd-loss", "Peak memory and time of the chunked KD loss vs. the plain one") { vocabs, tokens, hidden, block, k, dtype, casePath };
        command.SetAction((parse, output) =>
        {
            var settings = (parse.GetValue(hidden), parse.GetValue(block), parse.GetValue(k), parse.GetValue(dtype)!);
            if (parse.GetValue(casePath) is { } single)
            {
                var (vocab, count) = (int.Parse(parse.GetValue(vocabs)!), int.Parse(parse.GetValue(tokens)!));
                CommandRunner.WriteJson(output, RunCase(single, vocab, count, settings));
                return 0;
            }

            output.WriteLine($"hidden {settings.Item1}, {settings.Item4}, teacher top-{settings.Item3}, block {(settings.Item2 > 0 ? $"{settings.Item2}" : "auto (2^23 logits)")} positions; forward + backward; peak = process peak RSS above the inputs");
            var failures = new List<string>();
            output.WriteLine("| vocab | tokens | plain peak MiB | chunked peak MiB | memory ratio | plain s | chunked s | speed ratio |");
            output.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var vocab in parse.GetValue(vocabs)!.Split(','))
            {
                foreach (var count in parse.GetValue(tokens)!.Split(','))
                {
                    var plain = Spawn("plain", vocab, count, settings, failures);
                    var chunked = Spawn("chunked", vocab, count, settings, failures);
                    string Mib(Measurement? m) => m is null ? "failed¹" : $"{m.PeakBytes / 1048576.0:F0}";
                    string Sec(Measurement? m) => m is null ? "–" : $"{m.Seconds:F2}";
                    var memory = plain is null || chunked is null ? "–" : $"{(double)chunked.PeakBytes / plain.PeakBytes:P0}";
                    var speed = plain is null || chunked is null ? "–" : $"{plain.Seconds / chunked.Seconds:F2}×";
                    output.WriteLine($"| {vocab} | {count} | {Mib(plain)} | {Mib(chunked)} | {memory} | {Sec(plain)} | {Sec(chunked)} | {speed} |");
                }
            }

            output.WriteLine("memory ratio = chunked / plain peak; speed ratio = plain time / chunked time (> 1: chunked is faster)");
            foreach (var failure in failures)
                output.WriteLine($"¹ {failure}");
            return 0;
        });
        return command;
    }

    private sealed record Measurement(long PeakBytes, double Seconds, double Loss);

    private static Measurement? Spawn(string path, string vocab, string tokens, (int Hidden, int Block, int K, string DType) s, List<string> failures)
    {
        var self = Environment.ProcessPath!;
        var start = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            start.ArgumentList.Add(typeof(KdLossBenchCommand).Assembly.Location);
        foreach (var arg in new[] { "bench", "kd-loss", "--case", path, "--vocabs", vocab, "--tokens", tokens, "--hidden", $"{s.Hidden}", "--block", $"{s.Block}", "--k", $"{s.K}", "--dtype", s.DType })
            start.ArgumentList.Add(arg);
        using var process = new Process { StartInfo = start };
        var errors = new List<string>();
        process.ErrorDataReceived += (_, line) =>
        {
            if (!string.IsNullOrWhiteSpace(line.Data))
                lock (errors)
                    errors.Add(line.Data.Trim());
        };
        process.Start();
        process.BeginErrorReadLine();
        var text = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode == 0)
            return JsonSerializer.Deserialize<Measurement>(text, CommandRunner.Json);
        var reason = process.ExitCode == 137 ? "killed (out of memory)" : errors.FirstOrDefault() ?? $"exit {process.ExitCode}";
        failures.Add($"{path}, vocab {vocab}, {tokens} tokens: {reason}");
        return null;
    }

    private static Measurement RunCase(string path, int vocab, int count, (int Hidden, int Block, int K, string DType) s)
    {
        var dtype = CommandRunner.ParseDType(s.DType);
        using var g = new Generator(1);
        var hidden = (torch.randn(count, s.Hidden, generator: g) * 0.5).to_type(dtype).requires_grad_();
        var weight = (torch.randn(vocab, s.Hidden, generator: g) * 0.02).to_type(dtype).requires_grad_();
        var labels = torch.randint(0, vocab, [count], generator: g);
        var teacherLogits = torch.randn(count, s.K, generator: g);
        var signal = new TopKTeacherSignal(torch.randint(0, vocab, [count, s.K], generator: g), (teacherLogits - teacherLogits.logsumexp(-1, keepdim: true) - 0.1), TopKMode.Tail);
        var options = new DistillationLossOptions { Kind = DivergenceKind.ForwardKl, KdRatio = 0.5 };

        ResetPeak();
        var before = ResidentBytes("VmRSS");
        var watch = Stopwatch.StartNew();
        LossParts parts = path switch
        {
            "plain" => DistillationLoss.Compute(hidden.matmul(weight.t()), signal, labels, options),
            "chunked" => ChunkedDistillationLoss.Compute(hidden, weight, new TargetRows(signal), labels, options, blockSize: s.Block > 0 ? s.Block : null),
            _ => throw new ArgumentException($"unknown case '{path}'"),
        };
        parts.Total.backward();
        var seconds = watch.Elapsed.TotalSeconds;
        var peak = ResidentBytes("VmHWM") - before;
        return new Measurement(peak, seconds, parts.Total.item<float>());
    }

    /// <summary>Resets the kernel's peak-RSS counter for this process (Linux: write 5 to clear_refs).</summary>
    private static void ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (IOException)
        {
            // Not Linux or not permitted: the peak then includes setup.
        }
    }

    private static long ResidentBytes(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }

        return 0;
    }
}
