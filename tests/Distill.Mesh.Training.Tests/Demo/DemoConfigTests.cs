using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Demo;

namespace Distill.Mesh.Training.Tests.Demo;

public class DemoConfigTests
{
    /// <summary>The demo's three runs pass the validation every run passes (a fresh clone trains all three).</summary>
    [Fact]
    public void DemoRuns_PassValidation()
    {
        var workdir = Path.Combine(Path.GetTempPath(), "demo");
        var configs = new[]
        {
            DistillationDemo.TeacherConfig(workdir, Path.Combine(workdir, "teacher-init")),
            DistillationDemo.SftConfig(workdir, Path.Combine(workdir, "student-init")),
            DistillationDemo.KdConfig(workdir, Path.Combine(workdir, "student-init"), Path.Combine(workdir, "teacher")),
        };

        foreach (var config in configs)
            Assert.Empty(TrainConfigValidator.Problems(config, checkPaths: false));
        Assert.Equal(["sft", "sft", "kd"], configs.Select(c => c.Recipe));
    }
}
