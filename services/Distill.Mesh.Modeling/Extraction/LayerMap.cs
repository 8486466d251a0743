namespace Distill.Mesh.Modeling.Extraction;

/// <summary>The teacher layers one student layer is distilled from, with their blend weights (summing to 1).</summary>
/// <param name="Student">Student layer index.</param>
/// <param name="Position">Where the student layer sits in the teacher's depth (the weighted mean of its teacher layers).</param>
/// <param name="Parts">Teacher layers in ascending order, each with its weight; one part of weight 1 when a single layer maps.</param>
public sealed record LayerSource(int Student, double Position, (int Layer, double Weight)[] Parts)
{
    /// <summary>The blend in words: "layer 3" or "layer 3 × 0.667 + layer 4 × 0.333".</summary>
    public string Blend => Describe("layer");

    public override string ToString() => $"student {Student} ← {Describe("teacher")}";

    private string Describe(string what) => Parts.Length == 1
        ? $"{what} {Parts[0].Layer}"
        : string.Join(" + ", Parts.Select(p => $"{what} {p.Layer} × {p.Weight:0.###}"));
}

/// <summary>
/// Builds the student → teacher layer map. Linear first: position p = i·(L_T − 1)/(L_S − 1), blended
/// from the two nearest teacher layers ⌊p⌋ and ⌈p⌉ by the fractional part, so the first and last
/// layers map onto each other. When that would leave a teacher layer out (the teacher has about
/// twice the student's layers or more: 8 → 4 never reads teacher layers 1 and 6), each student layer
/// instead stands for an equal block [i·L_T/L_S, (i+1)·L_T/L_S) of the teacher's depth and blends
/// every teacher layer by its overlap with that block, so every teacher layer contributes.
/// </summary>
public static class LayerMap
{
    public static IReadOnlyList<LayerSource> Build(int teacherLayers, int studentLayers)
    {
        if (teacherLayers < 1 || studentLayers < 1)
            throw new ArgumentOutOfRangeException(nameof(studentLayers), $"layer counts must be positive (teacher {teacherLayers}, student {studentLayers})");
        var nearest = Enumerable.Range(0, studentLayers).Select(i => Nearest(i, teacherLayers, studentLayers)).ToList();
        var covered = nearest.SelectMany(l => l.Parts).Select(p => p.Layer).Distinct().Count();
        return covered == teacherLayers ? nearest : Enumerable.Range(0, studentLayers).Select(i => Block(i, teacherLayers, studentLayers)).ToList();
    }

    private static LayerSource Nearest(int student, int teacherLayers, int studentLayers)
    {
        // One student layer takes the middle of the teacher.
        var position = studentLayers == 1 ? (teacherLayers - 1) / 2.0 : student * (teacherLayers - 1) / (double)(studentLayers - 1);
        var lower = (int)Math.Floor(position + 1e-9);
        var weight = Math.Max(0, position - lower);
        if (weight < 1e-9)
            return new LayerSource(student, position, [(lower, 1.0)]);
        return new LayerSource(student, position, [(lower, 1 - weight), (Math.Min(lower + 1, teacherLayers - 1), weight)]);
    }

    /// <summary>Teacher layer j spans [j, j + 1) of the depth; its weight is its overlap with the block over the block's length.</summary>
    private static LayerSource Block(int student, int teacherLayers, int studentLayers)
    {
        var length = teacherLayers / (double)studentLayers;
        var (start, end) = (student * length, (student + 1) * length);
        var parts = Enumerable.Range(0, teacherLayers)
            .Select(j => (Layer: j, Weight: (Math.Min(end, j + 1) - Math.Max(start, j)) / length))
            .Where(p => p.Weight > 1e-9)
            .ToArray();
        var total = parts.Sum(p => p.Weight);
        parts = parts.Select(p => (p.Layer, p.Weight / total)).ToArray();
        return new LayerSource(student, parts.Sum(p => p.Layer * p.Weight), parts);
    }
}
