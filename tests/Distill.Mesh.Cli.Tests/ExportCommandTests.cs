using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Testing;
using TorchSharp;

namespace Distill.Mesh.Cli.Tests;

public sealed class ExportCommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

    /// <summary>A base model and a finished LoRA run's folder (RUN/adapter naming the base by its absolute path, as the trainer writes it).</summary>
    private void BaseAndRun()
    {
        using (var model = TinyModels.Create("llama", 70))
            TinyModels.SaveWithByteTokenizer(model, _dir.Combine("base"));
        using var adapted = CausalLanguageModel.FromPretrained(_dir.Combine("base"));
        var config = LoraConfig.For(4, 8, "all-linear");
        config.BaseModelNameOrPath = _dir.Combine("base");
        LoraAdapter.Attach(adapted, config, seed: 71);
        using var generator = new torch.Generator(72);
        using (torch.no_grad())
        {
            foreach (var (_, projection) in LoraAdapter.Adapted(adapted))
                projection.Lora!.B.weight!.normal_(0, 0.2, generator);
        }

        LoraAdapter.Save(adapted, config, _dir.Combine("run", "adapter"));
        File.WriteAllText(_dir.Combine("run", "metrics.jsonl"), "");
    }

    [Fact]
    public async Task Export_RunFolder_AsBFloat16Shards_WritesAModelThatLoadsAndMatchesTheAdaptedOne()
    {
        BaseAndRun();

        var report = await CliRunner.Json("export", "--adapter", _dir.Combine("run"), "--out", _dir.Combine("merged"), "--dtype", "bfloat16", "--max-shard-size", "100KB", "--json");

        Assert.Equal("bfloat16", (string)report["dtype"]!);
        Assert.Equal(_dir.Combine("base"), (string)report["base_folder"]!);
        Assert.Equal(14, report["merged_modules"]!.AsArray().Count);
        var shards = report["weight_files"]!.AsArray().Select(f => (string)f!).ToList();
        Assert.True(shards.Count > 1, string.Join(", ", shards));
        Assert.True(File.Exists(_dir.Combine("merged", SafetensorsCheckpoint.IndexFileName)));
        foreach (var shard in shards)
        {
            using var file = SafetensorsFile.Open(_dir.Combine("merged", shard));
            Assert.All(file.Tensors, t => Assert.Equal(SafetensorsDType.BF16, t.DType));
            Assert.True(new FileInfo(file.Path).Length < 100_000 + 4096, $"{shard} is {new FileInfo(file.Path).Length} bytes");
        }

        var check = report["check"]!;
        Assert.InRange((double)check["export_max_abs_diff"]!, 1e-6, (double)check["export_tolerance"]!);
        using var merged = CausalLanguageModel.FromPretrained(_dir.Combine("merged"));
        using var adapted = CausalLanguageModel.FromPretrained(_dir.Combine("base"));
        LoraAdapter.Load(adapted, _dir.Combine("run", "adapter"));
        using var ids = TinyModels.RandomIds(2, 10, 262, seed: 73);
        using var expected = adapted.Forward(ids);
        // bfloat16 weights: the export's stated bound, 2⁻⁴ of the logits' scale.
        using var largest = expected.abs().max();
        TensorAssert.Close(expected, merged.Forward(ids), atol: Math.Max(1, largest.item<float>()) / 16);
        Assert.True(File.Exists(_dir.Combine("merged", "tokenizer.json")));
    }

    [Fact]
    public async Task Export_Summary_ReportsTheCheck_OrThatItWasSkipped()
    {
        BaseAndRun();

        var (code, output, error) = await CliRunner.Run("export", "--adapter", _dir.Combine("run", "adapter"), "--out", _dir.Combine("a"));
        var (skipCode, skipped, _) = await CliRunner.Run("export", "--adapter", _dir.Combine("run"), "--base", _dir.Combine("base"), "--out", _dir.Combine("b"), "--no-check");

        Assert.True(code == 0, error);
        Assert.Contains($"merged 14 modules of {_dir.Combine("run", "adapter")} into {_dir.Combine("base")}", output);
        Assert.Contains($"wrote {_dir.Combine("a")}: float32,", output);
        Assert.Contains("tokenizer.json (base)", output);
        Assert.Contains("check (3 sequences × 24 tokens", output);
        Assert.Contains("loading", error);
        Assert.Equal(0, skipCode);
        Assert.Contains("check skipped (--no-check)", skipped);
    }

    [Theory]
    [InlineData("--dtype", "float64", "--dtype must be float32, bfloat16 or float16 (got 'float64')")]
    [InlineData("--max-shard-size", "0", "--max-shard-size must be at least 1 byte")]
    [InlineData("--max-shard-size", "5 parsecs", "--max-shard-size must be a size such as 5GB, 500MB, 2GiB or a number of bytes (got '5 parsecs')")]
    [InlineData("--base", "nowhere", "base model 'nowhere': no such folder")]
    [InlineData("--adapter", "nothing-here", "no adapter folder or run folder at 'nothing-here'")]
    [InlineData("--out", "FULL", "exists and is not empty (replace it with --force)")]
    public async Task Export_BadArgument_IsOneLineNamingIt_AndWritesNothing(string option, string value, string message)
    {
        BaseAndRun();
        Directory.CreateDirectory(_dir.Combine("full"));
        File.WriteAllText(_dir.Combine("full", "keep.txt"), "");
        var args = new Dictionary<string, string> { ["--adapter"] = _dir.Combine("run"), ["--out"] = _dir.Combine("merged") };
        args[option] = value == "FULL" ? _dir.Combine("full") : value;

        var (code, output, error) = await CliRunner.Run(["export", .. args.SelectMany(a => new[] { a.Key, a.Value })]);

        Assert.Equal(1, code);
        Assert.StartsWith("error: ", error);
        Assert.Contains(message, error);
        Assert.DoesNotContain("   at ", error);
        Assert.Equal("", output);
        Assert.False(Directory.Exists(_dir.Combine("merged")));
        Assert.Equal(["keep.txt"], Directory.EnumerateFileSystemEntries(_dir.Combine("full")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Help_ListsExport()
    {
        var (_, output, _) = await CliRunner.Run("--help");

        Assert.Contains("export", output);
        Assert.Contains("Merge a LoRA adapter into its base model", output);
    }

    public void Dispose() => _dir.Dispose();
}
