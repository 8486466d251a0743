namespace Distill.Mesh.Cli.Tests;

public sealed class ByteSizesTests
{
    [Theory]
    [InlineData("5GB", 5_000_000_000L)]   // HF's default max_shard_size, decimal units
    [InlineData("2GiB", 2_147_483_648L)]
    [InlineData("500mb", 500_000_000L)]
    [InlineData("1.5 MiB", 1_572_864L)]
    [InlineData("100KB", 100_000L)]
    [InlineData("4096", 4096L)]
    [InlineData("1B", 1L)]
    public void Parse_UnitsAsHuggingFaceWritesThem(string text, long bytes) =>
        Assert.Equal(bytes, ByteSizes.Parse(text, "--max-shard-size"));

    [Theory]
    [InlineData("")]
    [InlineData("-5GB")]
    [InlineData("5 GX")]
    [InlineData("0.1B")]
    [InlineData("1e9")]
    public void Parse_AnythingElse_NamesTheOption(string text) =>
        Assert.Contains("--max-shard-size must be", Assert.Throws<ArgumentException>(() => ByteSizes.Parse(text, "--max-shard-size")).Message);
}
