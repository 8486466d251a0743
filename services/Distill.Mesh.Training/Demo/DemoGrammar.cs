namespace Distill.Mesh.Training.Demo;

/// <summary>
/// The demo's data: sentences from a small stochastic grammar with subject–verb agreement and
/// skewed word choices. Generated here (no licence questions), with a known structure that lets us
/// measure what a student learned: held-out perplexity, and agreement accuracy.
/// </summary>
public sealed class DemoGrammar(int seed)
{
    private static readonly (string Singular, string Plural)[] Subjects =
    [
        ("the cat", "the cats"), ("the dog", "the dogs"), ("a bird", "two birds"), ("the child", "the children"),
        ("my friend", "my friends"), ("the farmer", "the farmers"), ("a teacher", "three teachers"), ("the robot", "the robots"),
    ];

    private static readonly (string Singular, string Plural)[] Verbs =
    [
        ("sees", "see"), ("likes", "like"), ("chases", "chase"), ("finds", "find"), ("wants", "want"), ("paints", "paint"),
    ];

    private static readonly string[] Objects = ["the ball", "a fish", "the garden", "some bread", "the red box", "a tall tree", "the old map", "a small boat"];

    private static readonly string[] Adverbs = ["today", "again", "quietly", "at night"];

    private readonly Random _random = new(seed);

    /// <summary>Zipf-like weights 1, 1/2, 1/3 …: the teacher learns the skew, hard labels show only samples of it.</summary>
    private int Pick(int count)
    {
        var total = Enumerable.Range(1, count).Sum(i => 1.0 / i);
        var u = _random.NextDouble() * total;
        for (var i = 0; i < count; i++)
        {
            u -= 1.0 / (i + 1);
            if (u <= 0)
                return i;
        }

        return count - 1;
    }

    public string Sentence()
    {
        var plural = _random.NextDouble() < 0.5;
        var subject = Subjects[Pick(Subjects.Length)];
        var verb = Verbs[Pick(Verbs.Length)];
        var sentence = $"{(plural ? subject.Plural : subject.Singular)} {(plural ? verb.Plural : verb.Singular)} {Objects[Pick(Objects.Length)]}";
        if (_random.NextDouble() < 0.3)
            sentence += " " + Adverbs[Pick(Adverbs.Length)];
        return sentence + (_random.NextDouble() < 0.8 ? "." : "!");
    }

    /// <summary>Agreement probes: every subject and verb in both numbers, with the right and the wrong verb form.</summary>
    public static IEnumerable<(string Context, string Right, string Wrong)> AgreementProbes() =>
        from s in Subjects
        from v in Verbs
        from plural in new[] { false, true }
        select (plural ? s.Plural : s.Singular, plural ? $" {v.Plural} the ball." : $" {v.Singular} the ball.", plural ? $" {v.Singular} the ball." : $" {v.Plural} the ball.");
}
