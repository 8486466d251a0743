using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Specs.Runs;

namespace Distill.Mesh.Cli.Tests.Display;

public sealed class RunViewTests
{
    [Fact]
    public void Run_watch_in_a_log_shows_each_stage_count_as_a_line_and_closes_it_when_the_stage_ends()
    {
        var error = new StringWriter();
        var output = new StringWriter();
        using (var view = new RunView(error, output))
        {
            RunEvent Progress(long done) => new() { RunId = "r1", Stage = Stage.Extract, Progress = new StageProgress { Done = done, Total = 4, Detail = $"tensor {done}" } };
            view.Show(new RunEvent { RunId = "r1", Stage = Stage.Extract, Transition = new StageTransition { State = StageState.Running } });
            view.Show(Progress(1));
            view.Show(Progress(4));
            view.Show(new RunEvent { RunId = "r1", Stage = Stage.Extract, Transition = new StageTransition { State = StageState.Succeeded } });
            view.Show(new RunEvent { RunId = "r1", Stage = Stage.Train, Train = new TrainProgress { Step = 2, TotalSteps = 4, Loss = 1.5, CeLoss = 1.5, LearningRate = 1e-3, TokensPerSecond = 100 } });
            view.Show(new RunEvent { RunId = "r1", Stage = Stage.Train, Transition = new StageTransition { State = StageState.Cancelled, Message = "cancelled by the user" } });
        }

        var lines = error.ToString().Trim().Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Equal("stage extract: running", lines[0]);
        Assert.Equal("stage extract: 1/4 tensors [#####...............] tensor 1, ETA --:--", lines[1]);
        Assert.StartsWith("stage extract: 4/4 tensors [####################] tensor 4, ", lines[2]);
        Assert.StartsWith("stage extract: 4/4 tensors in ", lines[3]);
        Assert.Equal("stage extract: succeeded", lines[4]);
        Assert.StartsWith("stage train: step 2/4 [##########..........] loss 1.5000 lr 1.0e-3 100 tok/s, ETA --:--", lines[5]);
        Assert.Equal("stage train: stopped at step 2/4: cancelled", lines[6]);
        Assert.Equal("stage train: cancelled — cancelled by the user", lines[7]);
        Assert.Equal(8, lines.Count);
        Assert.Equal("", output.ToString());
    }
}
