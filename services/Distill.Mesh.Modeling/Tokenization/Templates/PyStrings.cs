using System.Globalization;
using System.Text;

namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// Python's <c>str</c> semantics on .NET strings: whitespace as <c>str.isspace</c> defines it,
/// strip/split, and lengths, indices and slices counted in code points (not UTF-16 units), so an
/// emoji is one character as in Python.
/// </summary>
internal static class PyStrings
{
    /// <summary>Python's whitespace: .NET's plus the four information separators U+001C..U+001F.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    public static string Strip(string s, string? chars = null) => StripEnd(StripStart(s, chars), chars);

    public static string StripStart(string s, string? chars = null)
    {
        var i = 0;
        while (i < s.Length && Strippable(s[i], chars))
            i++;
        return s[i..];
    }

    public static string StripEnd(string s, string? chars = null)
    {
        var i = s.Length;
        while (i > 0 && Strippable(s[i - 1], chars))
            i--;
        return s[..i];
    }

    private static bool Strippable(char c, string? chars) => chars is null ? IsSpace(c) : chars.Contains(c);

    /// <summary><c>str.split(sep, maxsplit)</c>; a null separator splits on runs of whitespace.</summary>
    public static List<object?> Split(string s, string? separator, long maxSplit)
    {
        var parts = new List<object?>();
        if (separator is null)
        {
            var i = 0;
            while (true)
            {
                while (i < s.Length && IsSpace(s[i]))
                    i++;
                if (i >= s.Length)
                    break;
                if (maxSplit >= 0 && parts.Count == maxSplit)
                {
                    parts.Add(StripEnd(s[i..]));
                    break;
                }

                var start = i;
                while (i < s.Length && !IsSpace(s[i]))
                    i++;
                parts.Add(s[start..i]);
            }

            return parts;
        }

        if (separator.Length == 0)
            throw new TemplateException("str.split(): empty separator");
        var from = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            var at = s.IndexOf(separator, from, StringComparison.Ordinal);
            if (at < 0)
                break;
            parts.Add(s[from..at]);
            from = at + separator.Length;
        }

        parts.Add(s[from..]);
        return parts;
    }

    /// <summary><c>str.rsplit(sep, maxsplit)</c>.</summary>
    public static List<object?> RSplit(string s, string? separator, long maxSplit)
    {
        if (maxSplit < 0)
            return Split(s, separator, maxSplit);
        if (separator is null)
        {
            var words = new List<object?>();
            var i = s.Length;
            while (true)
            {
                while (i > 0 && IsSpace(s[i - 1]))
                    i--;
                if (i == 0)
                    break;
                if (words.Count == maxSplit)
                {
                    words.Add(StripStart(s[..i]));
                    break;
                }

                var end = i;
                while (i > 0 && !IsSpace(s[i - 1]))
                    i--;
                words.Add(s[i..end]);
            }

            words.Reverse();
            return words;
        }

        if (separator.Length == 0)
            throw new TemplateException("str.rsplit(): empty separator");
        var parts = new List<object?>();
        var to = s.Length;
        while (parts.Count < maxSplit)
        {
            var at = to - separator.Length < 0 ? -1 : s.LastIndexOf(separator, to - 1, StringComparison.Ordinal);
            if (at < 0 || at + separator.Length > to)
                break;
            parts.Add(s[(at + separator.Length)..to]);
            to = at;
        }

        parts.Add(s[..to]);
        parts.Reverse();
        return parts;
    }

    /// <summary><c>str.splitlines()</c>: Python's line boundaries.</summary>
    public static List<object?> SplitLines(string s, bool keepEnds)
    {
        var lines = new List<object?>();
        var start = 0;
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c is not ('\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029'))
                continue;
            var end = i;
            if (c == '\r' && i + 1 < s.Length && s[i + 1] == '\n')
                i++;
            lines.Add(keepEnds ? s[start..(i + 1)] : s[start..end]);
            start = i + 1;
        }

        if (start < s.Length)
            lines.Add(s[start..]);
        return lines;
    }

    public static bool HasSurrogates(string s) => s.AsSpan().IndexOfAnyInRange('\ud800', '\udfff') >= 0;

    /// <summary>The code points of <paramref name="s"/>, each as a string (what iterating a Python str gives).</summary>
    public static List<string> CodePoints(string s)
    {
        var points = new List<string>(s.Length);
        if (!HasSurrogates(s))
        {
            foreach (var c in s)
                points.Add(c.ToString());
            return points;
        }

        for (var i = 0; i < s.Length; i++)
        {
            var width = char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
            points.Add(s.Substring(i, width));
            i += width - 1;
        }

        return points;
    }

    public static int Length(string s) => HasSurrogates(s) ? CodePoints(s).Count : s.Length;

    /// <summary><c>s[start:stop:step]</c>.</summary>
    public static string Slice(string s, long? start, long? stop, long? step)
    {
        var points = CodePoints(s);
        var result = new StringBuilder();
        foreach (var i in SliceIndices(points.Count, start, stop, step))
            result.Append(points[i]);
        return result.ToString();
    }

    /// <summary>The indices <c>range(len)[start:stop:step]</c> selects, with Python's clamping of out-of-range bounds.</summary>
    public static IEnumerable<int> SliceIndices(int length, long? start, long? stop, long? step)
    {
        var by = step ?? 1;
        if (by == 0)
            throw new TemplateException("slice step cannot be zero");
        if (by > 0)
        {
            var from = Adjust(start ?? 0, length, 0, length);
            var to = Adjust(stop ?? length, length, 0, length);
            for (var i = from; i < to; i += by)
                yield return (int)i;
        }
        else
        {
            var from = start is { } a ? Adjust(a, length, -1, length - 1) : length - 1;
            var to = stop is { } b ? Adjust(b, length, -1, length - 1) : -1;
            for (var i = from; i > to; i += by)
                yield return (int)i;
        }
    }

    private static long Adjust(long index, int length, long min, long max)
    {
        if (index < 0)
            index += length;
        return Math.Clamp(index, min, max);
    }

    /// <summary>Python's <c>str.title()</c>: each run of letters starts upper-case and continues lower-case.</summary>
    public static string Title(string s)
    {
        var result = new StringBuilder(s.Length);
        var previousCased = false;
        foreach (var c in s)
        {
            var cased = char.IsLetter(c);
            result.Append(cased ? previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c) : c);
            previousCased = cased;
        }

        return result.ToString();
    }

    public static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>Python's <c>repr()</c> of a string: single quotes unless it holds only single quotes, non-printables escaped.</summary>
    public static string Repr(string s)
    {
        var quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var result = new StringBuilder(s.Length + 2).Append(quote);
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            switch (c)
            {
                case '\\': result.Append(@"\\"); continue;
                case '\n': result.Append(@"\n"); continue;
                case '\r': result.Append(@"\r"); continue;
                case '\t': result.Append(@"\t"); continue;
            }

            if (c == quote)
            {
                result.Append('\\').Append(c);
            }
            else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                result.Append(c).Append(s[++i]);
            }
            else if (Printable(c))
            {
                result.Append(c);
            }
            else
            {
                result.Append(c < 0x100 ? $"\\x{(int)c:x2}" : $"\\u{(int)c:x4}");
            }
        }

        return result.Append(quote).ToString();
    }

    private static bool Printable(char c) => c == ' ' || CharUnicodeInfo.GetUnicodeCategory(c) is not (UnicodeCategory.Control or UnicodeCategory.Format
        or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator
        or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator);
}
