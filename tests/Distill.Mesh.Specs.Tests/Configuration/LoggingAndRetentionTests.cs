using Distill.Mesh.Specs.Configuration;

namespace Distill.Mesh.Training.Tests.Configuration;

/// <summary>logging.backends and the checkpoint retention keys are validated like every other key.</summary>
public class LoggingAndRetentionTests
{
    private static TrainConfig Valid() => new()
    {
        Recipe = "sft",
        OutputDir = "out",
        Student = new StudentConfig { Model = "student" },
        Dataset = new DatasetConfig { Path = "data.jsonl" },
    };

    [Fact]
    public void Defaults_AreSound_JsonlOnly_ThreeCheckpoints()
    {
        var config = Valid();

        Assert.Empty(TrainConfigValidator.Problems(config, checkPaths: false));
        Assert.Equal(["jsonl"], config.Logging.Backends);
        Assert.Equal(3, config.Training.KeepCheckpoints);
        Assert.False(config.Training.KeepBest);
    }

    [Theory]
    [InlineData(new[] { "jsonl", "tensorbord" }, "logging.backends.1: 'tensorbord' is not one of jsonl, tensorboard (did you mean 'tensorboard'?)")]
    [InlineData(new[] { "tensorboard" }, "logging.backends: [tensorboard] leaves out jsonl")]
    [InlineData(new[] { "jsonl", "JSONL" }, "logging.backends: 'jsonl' is listed twice")]
    public void Backends_Unknown_Missing_OrRepeated_AreNamed(string[] backends, string expected)
    {
        var config = Valid();
        config.Logging.Backends = [.. backends];

        Assert.Contains(TrainConfigValidator.Problems(config, checkPaths: false), p => p.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Backends_JsonlAndTensorboard_AreSound()
    {
        var config = Valid();
        config.Logging.Backends = ["jsonl", "tensorboard"];

        Assert.Empty(TrainConfigValidator.Problems(config, checkPaths: false));
    }

    [Theory]
    [InlineData(-1, false, 0, 0, "training.keep_checkpoints: -1 is out of range; it must be at least 0")]
    [InlineData(3, true, 0, 10, "training.keep_best: true needs every evaluation checkpointed")]
    [InlineData(3, true, 15, 10, "training.keep_best: true needs every evaluation checkpointed")]
    public void Retention_OutOfRange_OrBestWithoutEvaluatedCheckpoints_IsNamed(int keep, bool best, int evalEvery, int checkpointEvery, string expected)
    {
        var config = Valid();
        config.Training.KeepCheckpoints = keep;
        config.Training.KeepBest = best;
        config.Training.EvalEvery = evalEvery;
        config.Training.CheckpointEvery = checkpointEvery;

        Assert.Contains(TrainConfigValidator.Problems(config, checkPaths: false), p => p.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void KeepBest_WithEvaluationsAtCheckpointSteps_IsSound()
    {
        var config = Valid();
        config.Training.KeepBest = true;
        config.Training.EvalEvery = 20;
        config.Training.CheckpointEvery = 10;

        Assert.Empty(TrainConfigValidator.Problems(config, checkPaths: false));
    }
}
