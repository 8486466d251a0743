using System.Text.RegularExpressions;

namespace Distill.Mesh.Modeling.Extraction;

/// <summary>The two checkpoint layouts of mixture-of-experts MLPs.</summary>
public enum ExpertStyle
{
    /// <summary>Mixtral: <c>block_sparse_moe.experts.N.{w1,w2,w3}</c> (gate, down, up) and the router <c>block_sparse_moe.gate</c>.</summary>
    Mixtral,

    /// <summary>Qwen-MoE and most others: <c>mlp.experts.N.{gate_proj,up_proj,down_proj}</c> and the router <c>mlp.gate</c>.</summary>
    QwenMoe,
}

/// <summary>One expert weight: layer, expert, part (the last name segment, e.g. w1 or gate_proj).</summary>
public sealed record ExpertTensor(int Layer, int Expert, string Part, ExpertStyle Style);

/// <summary>Recognises expert and router tensors under both namings (the public scripts knew only Mixtral's).</summary>
public static partial class ExpertNaming
{
    [GeneratedRegex(@"^model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\.(w1|w2|w3)\.weight$", RegexOptions.CultureInvariant)]
    private static partial Regex MixtralExpert();

    [GeneratedRegex(@"^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$", RegexOptions.CultureInvariant)]
    private static partial Regex QwenExpert();

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(block_sparse_moe|mlp)\.gate\.weight$", RegexOptions.CultureInvariant)]
    private static partial Regex Router();

    [GeneratedRegex(@"^model\.layers\.(\d+)\.", RegexOptions.CultureInvariant)]
    private static partial Regex LayerPrefix();

    /// <summary>The expert a tensor belongs to, or null.</summary>
    public static ExpertTensor? ParseExpert(string name)
    {
        var match = MixtralExpert().Match(name);
        var style = ExpertStyle.Mixtral;
        if (!match.Success)
        {
            match = QwenExpert().Match(name);
            style = ExpertStyle.QwenMoe;
        }

        return match.Success ? new ExpertTensor(int.Parse(match.Groups[1].Value), int.Parse(match.Groups[2].Value), match.Groups[3].Value, style) : null;
    }

    /// <summary>The layer of a router tensor, or null.</summary>
    public static int? ParseRouter(string name)
    {
        var match = Router().Match(name);
        return match.Success ? int.Parse(match.Groups[1].Value) : null;
    }

    /// <summary>The decoder layer a tensor belongs to, or null (embeddings, final norm, lm_head).</summary>
    public static int? ParseLayer(string name)
    {
        var match = LayerPrefix().Match(name);
        return match.Success ? int.Parse(match.Groups[1].Value) : null;
    }

    /// <summary>The same tensor name in another layer.</summary>
    public static string InLayer(string name, int layer) => LayerPrefix().Replace(name, $"model.layers.{layer}.", 1);

    /// <summary>An expert tensor's name.</summary>
    public static string ExpertName(int layer, int expert, string part, ExpertStyle style) => style == ExpertStyle.Mixtral
        ? $"model.layers.{layer}.block_sparse_moe.experts.{expert}.{part}.weight"
        : $"model.layers.{layer}.mlp.experts.{expert}.{part}.weight";

    /// <summary>A layer's router name.</summary>
    public static string RouterName(int layer, ExpertStyle style) => style == ExpertStyle.Mixtral
        ? $"model.layers.{layer}.block_sparse_moe.gate.weight"
        : $"model.layers.{layer}.mlp.gate.weight";

    /// <summary>The part with the same role under the other naming (w1 = gate, w3 = up, w2 = down).</summary>
    public static string Part(string part, ExpertStyle to) => (part, to) switch
    {
        ("gate_proj", ExpertStyle.Mixtral) => "w1",
        ("up_proj", ExpertStyle.Mixtral) => "w3",
        ("down_proj", ExpertStyle.Mixtral) => "w2",
        ("w1", ExpertStyle.QwenMoe) => "gate_proj",
        ("w3", ExpertStyle.QwenMoe) => "up_proj",
        ("w2", ExpertStyle.QwenMoe) => "down_proj",
        _ => part,
    };
}
