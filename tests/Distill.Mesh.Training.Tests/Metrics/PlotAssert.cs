using System.Xml.Linq;
using SkiaSharp;

namespace Distill.Mesh.Training.Tests.Metrics;

/// <summary>Checks that plot files are real images: the PNG decodes (and is not blank), the SVG parses and says what it shows.</summary>
internal static class PlotAssert
{
    public static void Png(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.AsSpan().StartsWith(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }), $"{path} has no PNG signature");
        using var bitmap = SKBitmap.Decode(bytes);
        Assert.NotNull(bitmap);
        Assert.Equal((1280, 800), (bitmap.Width, bitmap.Height));
        // Drawn: a good share of the pixels are not the white background.
        var inked = bitmap.Pixels.Count(p => p.Red < 200 || p.Green < 200 || p.Blue < 200);
        Assert.True(inked > bitmap.Pixels.Length / 100, $"{path}: only {inked} of {bitmap.Pixels.Length} pixels are drawn");
    }

    /// <returns>The text of the SVG's text elements.</returns>
    public static string Svg(string path, params string[] texts)
    {
        var root = XDocument.Load(path).Root!;
        Assert.Equal("svg", root.Name.LocalName);
        var text = string.Join("\n", root.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim()));
        foreach (var expected in texts)
            Assert.Contains(expected, text);
        Assert.True(root.Descendants().Count(e => e.Name.LocalName == "path") > 10, $"{path} draws almost nothing");
        return text;
    }
}
