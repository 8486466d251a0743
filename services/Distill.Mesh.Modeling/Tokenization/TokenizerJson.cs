using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>Shared helpers for reading tokenizer.json nodes.</summary>
internal static class TokenizerJson
{
    public static string TypeOf(JsonNode node, string what) =>
        node["type"]?.GetValue<string>() ?? throw new TokenizerFormatException($"tokenizer.json: {what} has no 'type'");

    public static TokenizerFormatException Unsupported(string what, string type, string supported) =>
        new($"tokenizer.json: {what} '{type}' is not supported (supported: {supported})");

    /// <summary>A <c>{"String": ...}</c> or <c>{"Regex": ...}</c> pattern as a .NET regex.</summary>
    public static Regex PatternOf(JsonNode pattern)
    {
        if (pattern["String"] is { } literal)
            return new Regex(Regex.Escape(literal.GetValue<string>()), RegexOptions.CultureInvariant);
        if (pattern["Regex"] is { } regex)
        {
            try
            {
                return new Regex(regex.GetValue<string>(), RegexOptions.Compiled | RegexOptions.CultureInvariant);
            }
            catch (ArgumentException e)
            {
                throw new TokenizerFormatException($"tokenizer.json: regex '{regex}' is not valid in .NET ({e.Message})", e);
            }
        }

        throw new TokenizerFormatException("tokenizer.json: pattern must be {\"String\": ...} or {\"Regex\": ...}");
    }
}
