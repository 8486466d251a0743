using Distill.Mesh.Specs.Configuration;

namespace Distill.Mesh.Specs.Tests.Configuration;

public class YamlTreeTests
{
    [Theory]
    [InlineData("x: &x [*x]", "anchors")]
    [InlineData("a: &a [1]\nb: *a", "anchors")]
    [InlineData("base: {lr: 1}\ntraining:\n  <<: {lr: 2}", "merge keys")]
    [InlineData("a: 1\na: 2", "appears twice")]
    [InlineData("a: 1\n---\nb: 2", "one YAML document")]
    [InlineData("a: !!python/object:os.system ls", "tags")]
    [InlineData("- 1\n- 2", "top level must be a mapping")]
    [InlineData("a: [1, 2", "invalid YAML at line")]
    [InlineData("? [a, b]\n: 1", "plain strings")]
    public void Hostile_Yaml_IsRefusedNamingWhy(string yaml, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => YamlTree.ParseMapping(yaml, "spec"));

        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void AliasBomb_IsRefusedBeforeAnyExpansion()
    {
        // The "billion laughs": nine levels of nine aliases each would expand to 9^9 nodes.
        var lines = new List<string> { "a0: &a0 [x, x, x, x, x, x, x, x, x]" };
        for (var i = 1; i < 10; i++)
            lines.Add($"a{i}: &a{i} [{string.Join(", ", Enumerable.Repeat($"*a{i - 1}", 9))}]");

        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<ConfigException>(() => YamlTree.ParseMapping(string.Join("\n", lines), "spec"));

        Assert.Contains("line 1", error.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 10 << 20);
    }

    [Fact]
    public void Depth_Size_AndNodeCount_AreBounded()
    {
        var deep = string.Concat(Enumerable.Repeat("[", 200)) + string.Concat(Enumerable.Repeat("]", 200));
        Assert.Contains("nesting deeper", Assert.Throws<ConfigException>(() => YamlTree.ParseMapping($"a: {deep}", "spec")).Message);
        Assert.Contains("exceed", Assert.Throws<ConfigException>(() => YamlTree.ParseMapping("a: " + new string('x', YamlTree.MaxBytes), "spec")).Message);
        var wide = "a: [" + string.Join(",", Enumerable.Repeat("1", YamlTree.MaxNodes + 1)) + "]";
        Assert.Contains("more than", Assert.Throws<ConfigException>(() => YamlTree.ParseMapping(wide, "spec")).Message);
    }

    [Fact]
    public void Scalars_AreTypedAsYamlCoreSchema_QuotedStayStrings()
    {
        var tree = YamlTree.ParseMapping("a: 1\nb: 2.5\nc: true\nd: ~\ne: '7'\nf: hello\ng: -3\nh: .nan\ni: 1e-4\nj: !!str 5", "spec");

        Assert.Equal(1L, tree["a"]!.GetValue<long>());
        Assert.Equal(2.5, tree["b"]!.GetValue<double>());
        Assert.True(tree["c"]!.GetValue<bool>());
        Assert.Null(tree["d"]);
        Assert.Equal("7", tree["e"]!.GetValue<string>());
        Assert.Equal("hello", tree["f"]!.GetValue<string>());
        Assert.Equal(-3L, tree["g"]!.GetValue<long>());
        Assert.Equal(".nan", tree["h"]!.GetValue<string>());
        Assert.Equal(1e-4, tree["i"]!.GetValue<double>());
        Assert.Equal("5", tree["j"]!.GetValue<string>());
    }
}
