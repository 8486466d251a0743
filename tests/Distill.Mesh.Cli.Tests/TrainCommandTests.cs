using Distill.Mesh.Testing;

namespace Distill.Mesh.Cli.Tests;

public sealed class TrainCommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

    private string WriteConfig()
    {
        using (var teacher = TinyModels.Create("llama", 1))
            TinyModels.SaveWithByteTokenizer(teacher, _dir.Combine("teacher"));
        using (var student = TinyModels.Create("qwen2", 2))
            TinyModels.SaveWithByteTokenizer(student, _dir.Combine("student"));
        File.WriteAllLines(_dir.Combine("data.jsonl"), Enumerable.Range(0, 12).Select(i => $"{{\"text\": \"sample number {i} is here\"}}"));
        File.WriteAllText(_dir.Combine("kd.yaml"), """
            recipe: kd
            output_dir: run
            student: { model: student }
            teachers: [ { model: teacher } ]
            dataset: { path: data.jsonl, max_length: 32, eval_fraction: 0.2 }
            training: { max_steps: 4, batch_size: 2, optimizer: { lr: 1.0e-3 } }
            """);
        return _dir.Combine("kd.yaml");
    }

    [Fact]
    public async Task Train_TinyConfigWithOverride_WritesModelMetricsAndResolvedConfig()
    {
        var config = WriteConfig();

        var (code, output, error) = await CliRunner.Run("train", "--config", config, "loss.kind=rkl", "training.max_steps=3");

        Assert.True(code == 0, error);
        Assert.Contains("done: 3 steps", output);
        Assert.Equal(3, File.ReadAllLines(_dir.Combine("run", "metrics.jsonl")).Length);
        Assert.Contains("\"kind\": \"rkl\"", File.ReadAllText(_dir.Combine("run", "resolved_config.json")));
        Assert.True(File.Exists(_dir.Combine("run", "model", "model.safetensors")));
        Assert.Contains("step 3/3", error);
    }

    [Fact]
    public async Task Train_WithPublish_PushesTheAdapterWithItsLineage()
    {
        var config = WriteConfig();
        var (registry, address) = await Hosting.ServiceHost.StartAsync(0, b => Registry.Extensions.RegistryServiceExtensions.AddRegistryService(b),
            a => Registry.Extensions.RegistryServiceExtensions.MapRegistryService(a), new Dictionary<string, string?> { ["Registry:Root"] = _dir.Combine("registry") }, true, default);
        try
        {
            var (code, output, error) = await CliRunner.Run("train", "--config", config, "training.max_steps=2",
                "student.lora.r=4", "student.lora.alpha=8", "publish.name=tiny-kd", $"publish.registry={address}", "publish.tags=[candidate]");
            Assert.True(code == 0, error + output);
            Assert.Contains("pushed tiny-kd:1", output);

            using var channel = ServiceDefaults.MeshTls.CreateChannel(address, null);
            var artifact = await new Contracts.Registry.V1.RegistryService.RegistryServiceClient(channel).GetAsync(new Contracts.Registry.V1.GetArtifactRequest { Ref = "tiny-kd@candidate" });
            Assert.Equal(Contracts.Registry.V1.ArtifactKind.Adapter, artifact.Manifest.Kind);
            Assert.Equal("kd", artifact.Manifest.Lineage.Method);
            // The registry keeps no paths of the pushing machine: folders by name, models by fingerprint.
            Assert.Equal("…/student", artifact.Manifest.Lineage.BaseModel);
            Assert.DoesNotContain(_dir.Path, artifact.Manifest.Lineage.ConfigJson);
            Assert.All(artifact.Manifest.Lineage.Teachers, t => Assert.DoesNotContain(_dir.Path, t));
            Assert.Equal(Modeling.Checkpoints.SafetensorsCheckpoint.Fingerprint(_dir.Combine("teacher")), Assert.Single(artifact.Manifest.Lineage.TeacherFingerprints));
            Assert.True(artifact.Manifest.Lineage.Metrics["perplexity"] > 1);
            Assert.Contains("\"max_steps\": 2", artifact.Manifest.Lineage.ConfigJson.Replace("\"max_steps\":2", "\"max_steps\": 2"));
        }
        finally
        {
            await registry.StopAsync();
            await registry.DisposeAsync();
        }
    }

    [Fact]
    public async Task Train_UnknownKey_ExitsWithTheKeyNamed()
    {
        var config = WriteConfig();

        var (code, _, error) = await CliRunner.Run("train", "--config", config, "training.learning_rate=1");

        Assert.Equal(1, code);
        Assert.Contains("learning_rate", error);
    }

    [Fact]
    public async Task TrainTwoRuns_ThenPlotThemCompared_WritesPngSvgAndTensorBoardFiles()
    {
        var config = WriteConfig();
        foreach (var kind in new[] { "rkl", "fkl" })
        {
            var (trained, output, error) = await CliRunner.Run("train", "--config", config, $"loss.kind={kind}", $"output_dir={_dir.Combine(kind)}", "training.eval_every=2", "logging.backends=[jsonl, tensorboard]");
            Assert.True(trained == 0, error);
            Assert.Contains(_dir.Combine(kind, "loss.png"), output);
            Assert.True(new FileInfo(_dir.Combine(kind, "loss.svg")).Length > 0);
            Assert.Contains(".tfevents.", Assert.Single(Directory.GetFiles(_dir.Combine(kind, "tensorboard"))));
        }

        var (png, pngOutput, pngError) = await CliRunner.Run("plot", _dir.Combine("rkl"), "--compare", _dir.Combine("fkl"), "--out", _dir.Combine("rkl-vs-fkl.png"));
        var (svg, _, svgError) = await CliRunner.Run("plot", _dir.Combine("rkl"), "--compare", _dir.Combine("fkl", "metrics.jsonl"), "--out", _dir.Combine("rkl-vs-fkl.svg"));

        Assert.True(png == 0, pngError);
        Assert.True(svg == 0, svgError);
        Assert.Contains($"wrote {_dir.Combine("rkl-vs-fkl.png")}", pngOutput);
        using var image = SkiaSharp.SKBitmap.Decode(_dir.Combine("rkl-vs-fkl.png"));
        Assert.Equal((1280, 800), (image.Width, image.Height));
        var text = string.Join("\n", System.Xml.Linq.XDocument.Load(_dir.Combine("rkl-vs-fkl.svg")).Descendants()
            .Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim()));
        Assert.Contains("rkl: loss", text);
        Assert.Contains("fkl: eval loss", text);
        Assert.Contains("rkl vs fkl", text);
    }

    public void Dispose() => _dir.Dispose();
}
