using System.CommandLine;
using Distill.Mesh.Cli.Commands;

namespace Distill.Mesh.Cli;

/// <summary>The <c>distill</c> command tree.</summary>
public static class DistillCommand
{
    public static RootCommand Create()
    {
        var root = new RootCommand("Distill.Mesh: distill a large teacher language model into a smaller student.")
        {
            InspectCommand.Create(),
            TokenizeCommand.Create(),
            GenerateCommand.Create(),
            LogitsCommand.Create(),
            LogitsCommand.CreateNll(),
            InitCommand.Create(),
            TrainCommand.Create(),
            ConfigsCommand.Create(),
            PlotCommand.Create(),
            DemoCommand.Create(),
            TeacherCommand.Create(),
            UpCommand.Create(),
            RunCommand.Create(),
            EvalCommand.Create(),
            ExtractCommand.Create(),
            ExportCommand.Create(),
            AdaptersCommand.Create(),
            KdLossCommand.Create(),
            BenchCommand.Create(),
            CrdCommand.Create(),
        };
        return root;
    }
}
