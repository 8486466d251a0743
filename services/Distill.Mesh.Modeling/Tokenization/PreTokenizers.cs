using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>
/// Builds the pre-tokenizer of a tokenizer.json: a function from text pieces to finer pieces
/// (words), which the BPE model then encodes one at a time.
/// </summary>
internal static class PreTokenizers
{
    /// <summary>GPT-2's word-splitting pattern, used by ByteLevel when <c>use_regex</c> is set.</summary>
    public static readonly Regex Gpt2Pattern = new(
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
        RegexOptions.Compiled | RegexOptions.CultureInvariant);

    public static Func<List<string>, List<string>> Parse(JsonNode? node)
    {
        if (node is null)
            return pieces => pieces;
        var type = TokenizerJson.TypeOf(node, "pre_tokenizer");
        return type switch
        {
            "Sequence" => Chain(node["pretokenizers"]!.AsArray().Select(Parse).ToList()),
            "Split" => Split(node),
            "ByteLevel" => ByteLevel(node["add_prefix_space"]?.GetValue<bool>() ?? false, node["use_regex"]?.GetValue<bool>() ?? true),
            "Metaspace" => Metaspace(node),
            "WhitespaceSplit" => pieces => pieces.SelectMany(p => p.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).ToList(),
            _ => throw TokenizerJson.Unsupported("pre_tokenizer", type, "Sequence, Split, ByteLevel, Metaspace, WhitespaceSplit"),
        };
    }

    private static Func<List<string>, List<string>> Chain(List<Func<List<string>, List<string>>> steps) =>
        pieces => steps.Aggregate(pieces, (current, step) => step(current));

    private static Func<List<string>, List<string>> Split(JsonNode node)
    {
        var regex = TokenizerJson.PatternOf(node["pattern"]!);
        var behavior = node["behavior"]?.GetValue<string>() ?? "Isolated";
        if (node["invert"]?.GetValue<bool>() == true)
            throw TokenizerJson.Unsupported("Split pre_tokenizer option", "invert", "invert: false");
        if (behavior is not ("Isolated" or "Removed" or "MergedWithPrevious" or "MergedWithNext"))
            throw TokenizerJson.Unsupported("Split behavior", behavior, "Isolated, Removed, MergedWithPrevious, MergedWithNext");
        return pieces => pieces.SelectMany(piece => SplitOne(piece, regex, behavior)).ToList();
    }

    /// <summary>Splits on regex matches; the matches are kept alone, dropped, or glued to a neighbour.</summary>
    public static IEnumerable<string> SplitOne(string text, Regex regex, string behavior)
    {
        var result = new List<string>();
        var position = 0;
        string? carry = null;
        foreach (Match match in regex.Matches(text))
        {
            if (match.Length == 0)
                continue;
            var gap = text[position..match.Index];
            switch (behavior)
            {
                case "Isolated":
                    Add(result, gap);
                    Add(result, match.Value);
                    break;
                case "Removed":
                    Add(result, gap);
                    break;
                case "MergedWithPrevious":
                    Add(result, gap + match.Value);
                    break;
                case "MergedWithNext":
                    Add(result, (carry ?? "") + gap);
                    carry = match.Value;
                    break;
            }

            position = match.Index + match.Length;
        }

        Add(result, (carry ?? "") + text[position..]);
        return result;

        static void Add(List<string> list, string piece)
        {
            if (piece.Length > 0)
                list.Add(piece);
        }
    }

    private static Func<List<string>, List<string>> ByteLevel(bool addPrefixSpace, bool useRegex) =>
        pieces => pieces
            .Select(p => addPrefixSpace && !p.StartsWith(' ') ? " " + p : p)
            .SelectMany(p => useRegex ? SplitOne(p, Gpt2Pattern, "Isolated") : [p])
            .Select(ByteLevelAlphabet.Encode)
            .ToList();

    private static Func<List<string>, List<string>> Metaspace(JsonNode node)
    {
        var replacement = node["replacement"]?.GetValue<string>() ?? "\u2581";
        var scheme = node["prepend_scheme"]?.GetValue<string>()
            ?? (node["add_prefix_space"]?.GetValue<bool>() == false ? "never" : "always");
        var split = node["split"]?.GetValue<bool>() ?? true;
        var separator = new Regex(Regex.Escape(replacement), RegexOptions.CultureInvariant);
        return pieces => pieces.SelectMany((piece, index) =>
        {
            var text = piece.Replace(" ", replacement);
            if ((scheme == "always" || (scheme == "first" && index == 0)) && !text.StartsWith(replacement, StringComparison.Ordinal))
                text = replacement + text;
            return split ? SplitOne(text, separator, "MergedWithNext") : [text];
        }).ToList();
    }
}
