using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>Builds the text normalizer described by a tokenizer.json <c>normalizer</c> node.</summary>
internal static class Normalizers
{
    public static Func<string, string> Parse(JsonNode? node)
    {
        if (node is null)
            return text => text;
        var type = TokenizerJson.TypeOf(node, "normalizer");
        return type switch
        {
            "Sequence" => Chain(node["normalizers"]!.AsArray().Select(Parse).ToList()),
            "NFC" => text => text.Normalize(NormalizationForm.FormC),
            "NFD" => text => text.Normalize(NormalizationForm.FormD),
            "NFKC" => text => text.Normalize(NormalizationForm.FormKC),
            "NFKD" => text => text.Normalize(NormalizationForm.FormKD),
            "Lowercase" => text => text.ToLowerInvariant(),
            // HF prepends only to non-empty text (so "" stays "" and encodes to no tokens).
            "Prepend" => Prepend(node["prepend"]!.GetValue<string>()),
            "Replace" => Replace(node),
            "Strip" => Strip(node["strip_left"]?.GetValue<bool>() ?? true, node["strip_right"]?.GetValue<bool>() ?? true),
            _ => throw TokenizerJson.Unsupported("normalizer", type, "Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip"),
        };
    }

    private static Func<string, string> Chain(List<Func<string, string>> steps) =>
        text => steps.Aggregate(text, (current, step) => step(current));

    private static Func<string, string> Prepend(string prefix) => text => text.Length == 0 ? text : prefix + text;

    private static Func<string, string> Strip(bool left, bool right) =>
        text => (left, right) switch
        {
            (true, true) => text.Trim(),
            (true, false) => text.TrimStart(),
            (false, true) => text.TrimEnd(),
            _ => text,
        };

    private static Func<string, string> Replace(JsonNode node)
    {
        var content = node["content"]!.GetValue<string>();
        var regex = TokenizerJson.PatternOf(node["pattern"]!);
        return text => regex.Replace(text, content.Replace("$", "$$"));
    }
}
