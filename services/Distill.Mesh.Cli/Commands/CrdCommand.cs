using System.CommandLine;
using Distill.Mesh.Controller.Kubernetes.Resources;

namespace Distill.Mesh.Cli.Commands;

/// <summary><c>distill crd [--out FILE]</c>: the DistillationRun CRD as generated from its C# types (what charts/distill-mesh-crds ships).</summary>
internal static class CrdCommand
{
    public static Command Create()
    {
        var output = new Option<string?>("--out") { Description = "write the YAML to this file (default: standard output)" };
        var command = new Command("crd", "Print the DistillationRun CustomResourceDefinition (generated from the operator's types)") { output };
        command.SetAction((parse, writer) =>
        {
            var yaml = CrdBuilder.Yaml();
            if (parse.GetValue(output) is { } path)
                Specs.Storage.AtomicFile.WriteAllText(path, yaml);
            else
                writer.Write(yaml);
            return 0;
        });
        return command;
    }
}
