using Distill.Mesh.Cli.Hosting;
using Distill.Mesh.Extractor.Extensions;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Registry.Extensions;
using Distill.Mesh.Testing;
using TorchSharp;

namespace Distill.Mesh.Cli.Tests;

public sealed class ExtractCommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

    /// <summary>A student, and a teacher that is the student plus a rank-2 change to every layer weight (a "fine-tune").</summary>
    private void FineTunedPair()
    {
        using (var student = TinyModels.Create("llama", 40))
            TinyModels.SaveWithByteTokenizer(student, _dir.Combine("student"));
        using var teacher = CausalLanguageModel.FromPretrained(_dir.Combine("student"));
        using var generator = new torch.Generator(41);
        using (torch.no_grad())
        {
            foreach (var (name, parameter) in teacher.named_parameters().Where(p => p.parameter.dim() == 2 && p.name.StartsWith("model.layers.", StringComparison.Ordinal)))
                parameter.add_(torch.randn(parameter.shape[0], 2, generator: generator).matmul(torch.randn(2, parameter.shape[1], generator: generator)) * 0.1);
        }

        TinyModels.SaveWithByteTokenizer(teacher, _dir.Combine("teacher"));
        File.WriteAllLines(_dir.Combine("eval.jsonl"), Enumerable.Range(0, 8).Select(i => $"{{\"text\": \"weight space sample {i} of the held-out set\"}}"));
    }

    [Fact]
    public async Task Extract_ReportsHelpOnTheDataset_AndPushesToTheRegistryWithLineage()
    {
        FineTunedPair();
        var (registry, address) = await ServiceHost.StartAsync(0, b => b.AddRegistryService(), a => a.MapRegistryService(), new Dictionary<string, string?> { ["Registry:Root"] = _dir.Combine("registry") }, true, default);
        try
        {
            var (code, output, error) = await CliRunner.Run("extract", "--teacher", _dir.Combine("teacher"), "--student", _dir.Combine("student"), "--out", _dir.Combine("lora"),
                "--rank", "4", "--rank-pattern", "down_proj=2", "--eval-dataset", _dir.Combine("eval.jsonl"), "--push", "tiny-extract", "--registry", address);
            Assert.True(code == 0, error + output);
            Assert.Contains("| model.layers.0.self_attn.q_proj | 64×64 | layer 0 | None | 4 |", output);
            Assert.Contains("| model.layers.1.mlp.down_proj | 64×128 | layer 1 | None | 2 |", output);
            Assert.Contains("pushed tiny-extract:1", error);

            // The honest answer: the adapter brings the student to the teacher (the change has rank 2 ≤ r).
            var effect = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(_dir.Combine("lora", "extraction_eval.json")))!;
            var before = effect["before"]!["kl_to_teacher"]!.GetValue<double>();
            var after = effect["after"]!["kl_to_teacher"]!.GetValue<double>();
            Assert.True(before > 1e-3 && after < before / 100, $"KL before {before}, after {after}");

            var (_, listing, _) = await CliRunner.Run("adapters", "ls", "--registry", address);
            Assert.Contains("| tiny-extract:1 | adapter | latest |", listing);
            Assert.Contains("| lora_extract |", listing);
            var listed = (await CliRunner.Json("adapters", "ls", "--registry", address, "--json")).AsArray();
            var only = Assert.Single(listed)!;
            Assert.Equal("tiny-extract", (string)only["name"]!);
            Assert.Equal(1, (int)only["version"]!);
            Assert.Equal("lora_extract", (string)only["method"]!);
            Assert.Equal(["latest"], only["tags"]!.AsArray().Select(t => (string)t!));
            Assert.Contains($"| {((long)only["bytes"]!).ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} |", listing);
            var (_, forStudent, _) = await CliRunner.Run("adapters", "ls", "--base", _dir.Combine("student"), "--kind", "adapter", "--registry", address);
            Assert.Contains("tiny-extract:1", forStudent);
            var (_, forTeacher, _) = await CliRunner.Run("adapters", "ls", "--base", _dir.Combine("teacher"), "--registry", address);
            Assert.DoesNotContain("tiny-extract:1", forTeacher);
            var (pullCode, pulled, pullError) = await CliRunner.Run("adapters", "pull", "tiny-extract@latest", "--out", _dir.Combine("pulled"), "--registry", address);
            Assert.True(pullCode == 0, pullError);
            Assert.Contains("pulled tiny-extract:1", pulled);
            using var student = CausalLanguageModel.FromPretrained(_dir.Combine("student"));
            Assert.Equal(4, LoraAdapter.Load(student, _dir.Combine("pulled")).R);
            // The pushed copy names the base model, not the pushing machine's path; the local adapter keeps its path.
            Assert.Equal("student", LoraAdapter.ReadConfig(_dir.Combine("pulled")).BaseModelNameOrPath);
            Assert.Equal(_dir.Combine("student"), LoraAdapter.ReadConfig(_dir.Combine("lora")).BaseModelNameOrPath);
            Assert.DoesNotContain(_dir.Path, File.ReadAllText(_dir.Combine("pulled", "adapter_config.json")));

            var (tagCode, tagged, _) = await CliRunner.Run("adapters", "tag", "tiny-extract:1", "prod", "--registry", address);
            Assert.Equal(0, tagCode);
            Assert.Contains("tags: latest, prod", tagged);
            var (badCode, _, badError) = await CliRunner.Run("adapters", "pull", "tiny-extract@nope", "--out", _dir.Combine("nope"), "--registry", address);
            Assert.Equal(1, badCode);
            Assert.Contains("NotFound", badError);
        }
        finally
        {
            await registry.StopAsync();
            await registry.DisposeAsync();
        }
    }

    [Fact]
    public async Task ShardsOnTheExtractorService_ConsolidateToTheInProcessAdapter()
    {
        FineTunedPair();
        var (extractor, address) = await ServiceHost.StartAsync(0, b => b.AddExtractorService(), a => a.MapExtractorService(), new Dictionary<string, string?>(), true, default);
        try
        {
            string[] Args(string output, params string[] more) =>
                ["extract", "--teacher", _dir.Combine("teacher"), "--student", _dir.Combine("student"), "--out", output, "--rank", "3", "--svd", "randomized", "--shards", "2", .. more];

            var (code0, out0, err0) = await CliRunner.Run(Args(_dir.Combine("remote"), "--extractor", address, "--shard-index", "0"));
            Assert.True(code0 == 0, err0 + out0);
            Assert.Contains("shard 0 of 2 finished", out0);
            var (refused, _, refusedError) = await CliRunner.Run(Args(_dir.Combine("remote"), "--extractor", address, "--consolidate"));
            Assert.Equal(1, refused);
            Assert.Contains("FailedPrecondition", refusedError);
            Assert.Contains("shard(s) 1 of 2 are not finished", refusedError);
            Assert.Equal(0, (await CliRunner.Run(Args(_dir.Combine("remote"), "--extractor", address, "--shard-index", "1"))).Code);
            var (code, output, error) = await CliRunner.Run(Args(_dir.Combine("remote"), "--extractor", address, "--consolidate", "--cleanup"));
            Assert.True(code == 0, error + output);
            Assert.False(Directory.Exists(_dir.Combine("remote", "shards")));

            var (local, _, localError) = await CliRunner.Run(Args(_dir.Combine("local")));
            Assert.True(local == 0, localError);
            Assert.Equal(File.ReadAllBytes(_dir.Combine("local", "adapter_model.safetensors")), File.ReadAllBytes(_dir.Combine("remote", "adapter_model.safetensors")));

            var (missing, _, missingError) = await CliRunner.Run("extract", "--teacher", _dir.Combine("nowhere"), "--student", _dir.Combine("student"), "--out", _dir.Combine("x"), "--extractor", address);
            Assert.Equal(1, missing);
            Assert.Contains("NotFound", missingError);
        }
        finally
        {
            await extractor.StopAsync();
            await extractor.DisposeAsync();
        }
    }

    [Fact]
    public async Task TheExtractorService_RefusesPathsOutsideItsAllowedRoots()
    {
        FineTunedPair();
        var settings = new Dictionary<string, string?> { ["Extractor:AllowedRoots:0"] = _dir.Combine("models"), ["Extractor:AllowedRoots:1"] = _dir.Combine("adapters") };
        var (extractor, address) = await ServiceHost.StartAsync(0, b => b.AddExtractorService(), a => a.MapExtractorService(), settings, true, default);
        try
        {
            var (code, _, error) = await CliRunner.Run("extract", "--teacher", _dir.Combine("teacher"), "--student", _dir.Combine("student"), "--out", _dir.Combine("adapters", "x"), "--extractor", address);
            Assert.Equal(1, code);
            Assert.Contains("PermissionDenied", error);
            Assert.Contains("teacher_model", error);

            Directory.CreateDirectory(_dir.Combine("models"));
            Directory.Move(_dir.Combine("teacher"), _dir.Combine("models", "teacher"));
            Directory.Move(_dir.Combine("student"), _dir.Combine("models", "student"));
            var (ok, output, okError) = await CliRunner.Run("extract", "--teacher", _dir.Combine("models", "teacher"), "--student", _dir.Combine("models", "student"),
                "--out", _dir.Combine("adapters", "x"), "--rank", "2", "--target-modules", "q_proj", "--extractor", address);
            Assert.True(ok == 0, okError + output);
            Assert.Contains("| model.layers.1.self_attn.q_proj | 64×64 | layer 1 | None | 2 |", output);
        }
        finally
        {
            await extractor.StopAsync();
            await extractor.DisposeAsync();
        }
    }

    public void Dispose() => _dir.Dispose();
}
