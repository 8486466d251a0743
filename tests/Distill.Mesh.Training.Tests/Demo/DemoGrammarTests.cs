using Distill.Mesh.Training.Demo;

namespace Distill.Mesh.Training.Tests.Demo;

public class DemoGrammarTests
{
    [Fact]
    public void Sentences_AreDeterministicBySeedAndAgree()
    {
        var a = new DemoGrammar(1);
        var first = Enumerable.Range(0, 200).Select(_ => a.Sentence()).ToList();
        var b = new DemoGrammar(1);
        var again = Enumerable.Range(0, 200).Select(_ => b.Sentence()).ToList();

        Assert.Equal(first, again);
        Assert.All(first, s => Assert.Matches(@"[.!]$", s));
        // Plural subjects take the plural verb: "the cats see", never "the cats sees".
        Assert.DoesNotContain(first, s => s.StartsWith("the cats ", StringComparison.Ordinal) && s.Split(' ')[2].EndsWith('s'));
        Assert.Contains(first, s => s.StartsWith("the cat ", StringComparison.Ordinal));
    }

    [Fact]
    public void AgreementProbes_CoverEverySubjectVerbAndNumberOnce()
    {
        var probes = DemoGrammar.AgreementProbes().ToList();

        Assert.Equal(8 * 6 * 2, probes.Count);
        Assert.All(probes, p => Assert.NotEqual(p.Right, p.Wrong));
        Assert.Contains(probes, p => p.Context == "the children" && p.Right == " see the ball." && p.Wrong == " sees the ball.");
    }
}
