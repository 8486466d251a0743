using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tokenization;

namespace Distill.Mesh.Cli;

/// <summary>Runs a command body, turning user errors into a one-line message and exit code 1.</summary>
internal static class CommandRunner
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static void SetAction(this Command command, Func<ParseResult, TextWriter, int> body) =>
        command.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            try
            {
                return body(parseResult, output);
            }
            catch (Exception e) when (IsUserError(e))
            {
                parseResult.InvocationConfiguration.Error.WriteLine($"error: {e.Message}");
                return 1;
            }
        });

    /// <summary>Errors caused by the user's files, arguments or environment (not bugs): reported without a stack trace.</summary>
    public static bool IsUserError(Exception e) => e is IOException
        or CheckpointFormatException or ModelConfigException or TokenizerFormatException or AdapterFormatException or Modeling.Tokenization.Templates.TemplateException
        or ArgumentException or FormatException or JsonException or UnauthorizedAccessException
        or Specs.Configuration.ConfigException or Training.Recipes.TrainingDivergedException or Training.Teachers.IncompatibleTeacherException
        or Training.Datasets.DatasetFormatException or Training.Metrics.MetricsFormatException or Grpc.Core.RpcException;

    /// <summary>A user error in one line (an RPC failure with its status).</summary>
    public static string Describe(Exception e) => e is Grpc.Core.RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : e.Message;

    public static void WriteJson(TextWriter output, object value) => output.WriteLine(JsonSerializer.Serialize(value, Json));

    /// <summary>Parses "1,2,3" (spaces allowed).</summary>
    public static int[] ParseIds(string text, string option)
    {
        try
        {
            return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        }
        catch (FormatException)
        {
            throw new FormatException($"{option} must be comma-separated token ids, e.g. 1,2,3 (got '{text}')");
        }
    }

    /// <summary>A device by name ("cpu", "cuda", "cuda:1"); CUDA needs a build with -p:TorchBackend=cuda.</summary>
    public static TorchSharp.torch.Device ParseDevice(string text)
    {
        if (text.StartsWith("cuda", StringComparison.OrdinalIgnoreCase) && !TorchSharp.torch.cuda.is_available())
            throw new ArgumentException($"device '{text}' requested but CUDA is not available (this build uses TorchBackend=cpu, or no GPU is visible)");
        return TorchSharp.torch.device(text);
    }

    /// <summary>Parses float32 / bfloat16 (and aliases).</summary>
    public static TorchSharp.torch.ScalarType ParseDType(string text) => text.ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => TorchSharp.torch.ScalarType.Float32,
        "bfloat16" or "bf16" => TorchSharp.torch.ScalarType.BFloat16,
        "float16" or "fp16" or "f16" => TorchSharp.torch.ScalarType.Float16,
        _ => throw new ArgumentException($"unknown dtype '{text}' (use float32, bfloat16 or float16)"),
    };
}
