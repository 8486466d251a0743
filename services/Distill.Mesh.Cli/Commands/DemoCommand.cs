using System.CommandLine;
using Distill.Mesh.Training.Demo;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill demo</c>: the main job on embedded defaults — train (or reuse) a teacher on generated
/// sentences, distil it into a smaller student with KD and with plain fine-tuning, print the table.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var workdir = new Option<string>("--workdir") { Description = "where data, models and runs go", DefaultValueFactory = _ => Path.Combine(".distill", "demo") };
        var command = new Command("demo", "Distil a teacher into a student (KD vs. plain fine-tuning) on generated data; prints the comparison") { workdir };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var folder = Path.GetFullPath(parse.GetValue(workdir)!);
            var rows = await DistillationDemo.RunAsync(folder, parse.InvocationConfiguration.Error, cancellationToken);
            var table = DistillationDemo.Table(rows);
            output.WriteLine(table);
            File.WriteAllText(Path.Combine(folder, "demo_results.md"), table + "\n");
            var kd = rows.Single(r => r.Model == "student KD");
            var sft = rows.Single(r => r.Model == "student SFT");
            output.WriteLine($"KD vs SFT on held-out data: perplexity {kd.Perplexity:F3} vs {sft.Perplexity:F3}, KL to teacher {kd.KlToTeacher:F4} vs {sft.KlToTeacher:F4}, agreement {kd.AgreementAccuracy:P1} vs {sft.AgreementAccuracy:P1}");
            return 0;
        });
        return command;
    }
}
