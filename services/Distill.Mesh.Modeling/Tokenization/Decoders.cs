using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>Builds the decoder of a tokenizer.json: token strings in, text pieces out.</summary>
internal static class Decoders
{
    public static Func<List<string>, List<string>> Parse(JsonNode? node)
    {
        if (node is null)
            return tokens => [string.Concat(tokens)];
        var type = TokenizerJson.TypeOf(node, "decoder");
        return type switch
        {
            "Sequence" => Chain(node["decoders"]!.AsArray().Select(Parse).ToList()),
            "ByteLevel" => ByteLevel,
            "ByteFallback" => ByteFallback,
            "Fuse" => tokens => [string.Concat(tokens)],
            "Replace" => Replace(node),
            "Strip" => Strip(node["content"]!.GetValue<string>()[0], node["start"]?.GetValue<int>() ?? 0, node["stop"]?.GetValue<int>() ?? 0),
            "Metaspace" => Metaspace(node),
            _ => throw TokenizerJson.Unsupported("decoder", type, "Sequence, ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace"),
        };
    }

    private static Func<List<string>, List<string>> Chain(List<Func<List<string>, List<string>>> steps) =>
        tokens => steps.Aggregate(tokens, (current, step) => step(current));

    /// <summary>Byte-level characters back to bytes, then UTF-8 (invalid sequences become U+FFFD).</summary>
    private static List<string> ByteLevel(List<string> tokens)
    {
        var bytes = new List<byte>();
        var text = new StringBuilder();
        foreach (var token in tokens)
        {
            if (!ByteLevelAlphabet.TryDecode(token, bytes))
            {
                // Not byte-level (an added token's literal text): flush and keep it as is.
                text.Append(Encoding.UTF8.GetString(bytes.ToArray()));
                bytes.Clear();
                text.Append(token);
            }
        }

        text.Append(Encoding.UTF8.GetString(bytes.ToArray()));
        return [text.ToString()];
    }

    /// <summary>Runs of <c>&lt;0xXX&gt;</c> tokens become the text their bytes encode.</summary>
    private static List<string> ByteFallback(List<string> tokens)
    {
        var result = new List<string>();
        var pending = new List<byte>();
        foreach (var token in tokens)
        {
            if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
                && byte.TryParse(token.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
            {
                pending.Add(b);
                continue;
            }

            Flush();
            result.Add(token);
        }

        Flush();
        return result;

        void Flush()
        {
            if (pending.Count == 0)
                return;
            result.Add(Encoding.UTF8.GetString(pending.ToArray()));
            pending.Clear();
        }
    }

    private static Func<List<string>, List<string>> Replace(JsonNode node)
    {
        var regex = TokenizerJson.PatternOf(node["pattern"]!);
        var content = node["content"]!.GetValue<string>().Replace("$", "$$");
        return tokens => tokens.Select(t => regex.Replace(t, content)).ToList();
    }

    private static Func<List<string>, List<string>> Strip(char content, int start, int stop) =>
        tokens => tokens.Select(token =>
        {
            var begin = 0;
            while (begin < start && begin < token.Length && token[begin] == content)
                begin++;
            var end = token.Length;
            while (token.Length - end < stop && end > begin && token[end - 1] == content)
                end--;
            return token[begin..end];
        }).ToList();

    private static Func<List<string>, List<string>> Metaspace(JsonNode node)
    {
        var replacement = node["replacement"]?.GetValue<string>() ?? "\u2581";
        var scheme = node["prepend_scheme"]?.GetValue<string>()
            ?? (node["add_prefix_space"]?.GetValue<bool>() == false ? "never" : "always");
        return tokens => tokens.Select((token, i) =>
        {
            var text = token.Replace(replacement, " ");
            return i == 0 && scheme != "never" && text.StartsWith(' ') ? text[1..] : text;
        }).ToList();
    }
}
