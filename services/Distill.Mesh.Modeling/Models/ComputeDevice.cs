using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Models;

/// <summary>Device names as users write them: <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>.</summary>
public static partial class ComputeDevice
{
    [GeneratedRegex("^(cpu|cuda|cuda:[0-9]{1,2})$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    /// <summary>The device; CUDA names fail when this build or machine has no CUDA, naming <paramref name="setting"/>.</summary>
    public static Device Parse(string? name, string setting)
    {
        var text = (name ?? "cpu").Trim().ToLowerInvariant();
        if (!NamePattern().IsMatch(text))
            throw new ArgumentException($"{setting} '{name}' is not cpu, cuda or cuda:N");
        if (text == "cpu")
            return torch.CPU;
        if (!torch.cuda.is_available())
            throw new ArgumentException($"{setting} '{name}' needs CUDA, which is not available here (a -p:TorchBackend=cuda build on a machine with a GPU)");
        var index = text.Contains(':') ? int.Parse(text[5..], System.Globalization.CultureInfo.InvariantCulture) : 0;
        if (index >= torch.cuda.device_count())
            throw new ArgumentException($"{setting} '{name}': this machine has {torch.cuda.device_count()} CUDA device(s)");
        return torch.device(text);
    }
}
