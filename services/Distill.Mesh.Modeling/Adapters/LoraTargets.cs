using System.Text.Json;
using System.Text.RegularExpressions;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Modules;

namespace Distill.Mesh.Modeling.Adapters;

/// <summary>PEFT's rules for which modules an adapter targets and with what rank and alpha.</summary>
public static class LoraTargets
{
    /// <summary>Linear modules of a model by path (e.g. <c>model.layers.0.self_attn.q_proj</c>).</summary>
    public static IReadOnlyList<(string Path, Projection Module)> Linears(CausalLanguageModel model) =>
        model.named_modules().Where(m => m.module is Projection).Select(m => (m.name, (Projection)m.module)).ToList();

    /// <summary>Whether a module path names a token embedding table (HF's <c>…embed_tokens</c>), which takes embedding LoRA.</summary>
    public static bool IsEmbedding(string modulePath) => modulePath == "embed_tokens" || modulePath.EndsWith(".embed_tokens", StringComparison.Ordinal);

    /// <summary>Embedding tables of a model by path (e.g. <c>model.embed_tokens</c>).</summary>
    public static IReadOnlyList<(string Path, TokenEmbedding Module)> Embeddings(CausalLanguageModel model) =>
        model.named_modules().Where(m => m.module is TokenEmbedding).Select(m => (m.name, (TokenEmbedding)m.module)).ToList();

    /// <summary>The linear modules and embedding tables <paramref name="config"/> targets, in path order; error if none.</summary>
    public static (IReadOnlyList<(string Path, Projection Module)> Linears, IReadOnlyList<(string Path, TokenEmbedding Module)> Embeddings) Select(CausalLanguageModel model, LoraConfig config)
    {
        var linears = Linears(model);
        var (matchesLinear, matchesEmbedding) = (Matcher(config), Matcher(config, embeddings: true));
        var selected = linears.Where(l => matchesLinear(l.Path)).OrderBy(l => l.Path, StringComparer.Ordinal).ToList();
        var tables = Embeddings(model).Where(e => matchesEmbedding(e.Path)).OrderBy(e => e.Path, StringComparer.Ordinal).ToList();
        if (selected.Count == 0 && tables.Count == 0)
        {
            var kinds = linears.Select(l => l.Path.Split('.')[^1]).Concat(Embeddings(model).Select(e => e.Path.Split('.')[^1])).Distinct().Order();
            throw new AdapterFormatException($"target_modules {config.TargetModules.GetRawText()} matches no module of the model (its linear and embedding modules are named: {string.Join(", ", kinds)})");
        }

        return (selected, tables);
    }

    /// <summary>
    /// Whether target_modules selects a module path (PEFT's three forms of target_modules).
    /// "all-linear" selects linear modules but the output head, never embeddings.
    /// </summary>
    public static Func<string, bool> Matcher(LoraConfig config, bool embeddings = false)
    {
        if (config.TargetModules.ValueKind == JsonValueKind.String)
        {
            var target = config.TargetModules.GetString()!;
            if (target == "all-linear")
                return embeddings ? _ => false : path => path != "lm_head";
            var regex = new Regex($"^(?:{target})$", RegexOptions.CultureInvariant);
            return regex.IsMatch;
        }

        var names = config.TargetModules.EnumerateArray().Select(e => e.GetString()!).ToList();
        return path => names.Any(n => path == n || path.EndsWith("." + n, StringComparison.Ordinal));
    }

    /// <summary>The rank and alpha of one module: the first matching pattern key, else r and lora_alpha.</summary>
    public static (int Rank, double Alpha) RankAndAlpha(LoraConfig config, string path) =>
        (Pattern(config.RankPattern, path) ?? config.R, Pattern(config.AlphaPattern, path) ?? config.LoraAlpha);

    /// <summary>PEFT matches a pattern key against the end of the module path: <c>(.*\.)?key$</c>.</summary>
    private static T? Pattern<T>(Dictionary<string, T> patterns, string path) where T : struct
    {
        foreach (var (key, value) in patterns)
        {
            if (Regex.IsMatch(path, $"^(.*\\.)?(?:{key})$", RegexOptions.CultureInvariant))
                return value;
        }

        return null;
    }
}
