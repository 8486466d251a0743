namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>
/// GPT-2's reversible byte ↔ character map: printable bytes stand for themselves, the rest are
/// shifted to code points from U+0100, so every byte string is a string of visible characters.
/// </summary>
public static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = Build();
    private static readonly Dictionary<char, byte> CharToByte =
        ByteToChar.Select((c, b) => (c, b)).ToDictionary(p => p.c, p => (byte)p.b);

    private static char[] Build()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)next++;
        }

        return map;
    }

    /// <summary>The character standing for a byte.</summary>
    public static char Encode(byte b) => ByteToChar[b];

    /// <summary>The UTF-8 bytes of <paramref name="text"/> as byte-level characters.</summary>
    public static string Encode(string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, (span, source) =>
        {
            for (var i = 0; i < source.Length; i++)
                span[i] = ByteToChar[source[i]];
        });
    }

    /// <summary>
    /// Appends the bytes that byte-level characters stand for; false, appending nothing, if any
    /// character is outside the alphabet (an added token's literal text).
    /// </summary>
    public static bool TryDecode(string symbols, List<byte> output)
    {
        foreach (var c in symbols)
        {
            if (!CharToByte.ContainsKey(c))
                return false;
        }

        foreach (var c in symbols)
            output.Add(CharToByte[c]);
        return true;
    }
}
