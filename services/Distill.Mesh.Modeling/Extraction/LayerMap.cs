namespace Distill.Mesh.Modeling.Extraction;

/// <summary>
/// Where a student layer sits in the teacher's depth: position p = i·(L_T − 1)/(L_S − 1), blended
/// from the two nearest teacher layers ⌊p⌋ and ⌈p⌉ by the fractional part (so the first and last
/// layers map onto each other, and every teacher layer between can contribute).
/// </summary>
/// <param name="Student">Student layer index.</param>
/// <param name="Position">Position in the teacher's depth.</param>
/// <param name="Lower">Teacher layer ⌊p⌋, weighted 1 − <paramref name="UpperWeight"/>.</param>
/// <param name="Upper">Teacher layer ⌈p⌉ (= Lower when p is whole).</param>
/// <param name="UpperWeight">Fractional part of p.</param>
public sealed record LayerSource(int Student, double Position, int Lower, int Upper, double UpperWeight)
{
    /// <summary>The teacher layers blended, with their weights (one layer when the position is whole).</summary>
    public (int Layer, double Weight)[] Parts => UpperWeight == 0 ? [(Lower, 1.0)] : [(Lower, 1 - UpperWeight), (Upper, UpperWeight)];

    /// <summary>The blend in words: "layer 3" or "layer 3 × 0.667 + layer 4 × 0.333".</summary>
    public string Blend => Describe("layer");

    public override string ToString() => $"student {Student} ← {Describe("teacher")}";

    private string Describe(string what) =>
        string.Join(" + ", Parts.Select(p => UpperWeight == 0 ? $"{what} {p.Layer}" : $"{what} {p.Layer} × {p.Weight:0.###}"));
}

/// <summary>Builds the linear student → teacher layer map.</summary>
public static class LayerMap
{
    public static IReadOnlyList<LayerSource> Build(int teacherLayers, int studentLayers)
    {
        if (teacherLayers < 1 || studentLayers < 1)
            throw new ArgumentOutOfRangeException(nameof(studentLayers), $"layer counts must be positive (teacher {teacherLayers}, student {studentLayers})");
        return Enumerable.Range(0, studentLayers).Select(i =>
        {
            // One student layer takes the middle of the teacher.
            var position = studentLayers == 1 ? (teacherLayers - 1) / 2.0 : i * (teacherLayers - 1) / (double)(studentLayers - 1);
            var lower = (int)Math.Floor(position + 1e-9);
            var weight = Math.Max(0, position - lower);
            if (weight < 1e-9)
                weight = 0;
            var upper = weight == 0 ? lower : Math.Min(lower + 1, teacherLayers - 1);
            return new LayerSource(i, position, lower, upper, weight);
        }).ToList();
    }
}
