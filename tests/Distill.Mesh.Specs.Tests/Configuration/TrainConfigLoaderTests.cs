using Distill.Mesh.Testing;
using Distill.Mesh.Specs.Configuration;

namespace Distill.Mesh.Training.Tests.Configuration;

public class TrainConfigLoaderTests
{
    private const string Yaml = """
        recipe: kd
        seed: 7
        output_dir: out
        student:
          model: models/student
          lora: { r: 4, alpha: 8, target_modules: [q_proj, v_proj] }
        teachers:
          - model: /abs/teacher
            weight: 2
        loss: { kind: jsd, beta: 0.3, temperature: 2.0, t2: true }
        dataset: { path: data.jsonl, max_length: 128 }
        training:
          batch_size: 2
          optimizer: { name: adamw, lr: 1e-3 }
        """;

    [Fact]
    public void Load_ParsesYamlAppliesDottedOverridesAndResolvesPaths()
    {
        using var dir = new TempFolder();
        var path = dir.Combine("kd.yaml");
        File.WriteAllText(path, Yaml);

        var (config, resolved) = TrainConfigLoader.Load(path, ["training.optimizer.lr=5e-4", "loss.kind=rkl", "student.lora.target_modules=[all-linear]", "training.max_steps=10"]);

        Assert.Equal(5e-4, config.Training.Optimizer.Lr);
        Assert.Equal("rkl", config.Loss.Kind);
        Assert.Equal(0.3, config.Loss.Beta);
        Assert.True(config.Loss.T2);
        Assert.Equal(["all-linear"], config.Student.Lora!.TargetModules);
        Assert.Equal(10, config.Training.MaxSteps);
        Assert.Equal(dir.Combine("models", "student"), config.Student.Model);
        Assert.Equal("/abs/teacher", config.Teachers[0].Model);
        Assert.Equal(2, config.Teachers[0].Weight);
        Assert.Equal(5e-4, resolved["training"]!["optimizer"]!["lr"]!.GetValue<double>());
    }

    [Theory]
    [InlineData("training.optimiser.lr=1", "optimiser")]
    [InlineData("loss.temperature=hot", "loss.temperature")]
    [InlineData("no-equals-sign", "must look like key.path=value")]
    public void Load_BadOverride_NamesTheKey(string item, string expected)
    {
        using var dir = new TempFolder();
        var path = dir.Combine("kd.yaml");
        File.WriteAllText(path, Yaml);

        var error = Assert.Throws<ConfigException>(() => TrainConfigLoader.Load(path, [item]));

        Assert.Contains(expected, error.Message);
    }
}
