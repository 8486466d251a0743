using System.CommandLine;
using System.Text.Json.Nodes;

namespace Distill.Mesh.Cli.Tests;

/// <summary>Runs `distill` in-process and captures what it prints.</summary>
internal static class CliRunner
{
    public static async Task<(int Code, string Output, string Error)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await DistillCommand.Create().Parse(args)
            .InvokeAsync(new InvocationConfiguration { Output = output, Error = error })
            .WaitAsync(TimeSpan.FromMinutes(2));
        return (code, output.ToString(), error.ToString());
    }

    public static async Task<JsonNode> Json(params string[] args)
    {
        var (code, output, error) = await Run(args);
        Assert.True(code == 0, $"exit {code}: {error}");
        return JsonNode.Parse(output)!;
    }
}
