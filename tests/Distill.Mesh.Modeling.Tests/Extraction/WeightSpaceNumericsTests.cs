using Distill.Mesh.Modeling.Extraction;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Extraction;

/// <summary>Truncated SVD, layer map, shape projection and k-means against hand-built references.</summary>
public class WeightSpaceNumericsTests
{
    /// <summary>M = Q₁·diag(σ)·Q₂ᵀ with orthonormal Q from seeded QR: its singular values are σ exactly.</summary>
    private static Tensor WithSpectrum(long rows, long columns, double[] sigma, long seed, ScalarType dtype = ScalarType.Float64)
    {
        using var generator = new Generator((ulong)seed);
        var q1 = linalg.qr(randn(rows, sigma.Length, dtype: ScalarType.Float64, generator: generator)).Q;
        var q2 = linalg.qr(randn(columns, sigma.Length, dtype: ScalarType.Float64, generator: generator)).Q;
        return (q1 * tensor(sigma).unsqueeze(0)).matmul(q2.t()).to_type(dtype);
    }

    [Fact]
    public void ExactSvd_ReachesTheEckartYoungOptimum_Float64()
    {
        var sigma = Enumerable.Range(0, 30).Select(i => 10.0 / (1 + i)).ToArray();
        using var matrix = WithSpectrum(40, 30, sigma, seed: 1);
        foreach (var rank in new[] { 1, 5, 12 })
        {
            using var low = TruncatedSvd.Compute(matrix, rank);
            var error = (matrix - low.Product()).norm().item<double>();
            // Hand reference: sqrt of the sum of the dropped σ².
            var optimum = Math.Sqrt(sigma.Skip(rank).Sum(s => s * s));
            Assert.Equal(optimum, error, 1e-10);
            Assert.Equal(optimum, TruncatedSvd.OptimalError(TruncatedSvd.SingularValues(matrix), rank), 1e-10);
            Assert.Equal(optimum, low.DroppedNorm!.Value, 1e-10);
        }
    }

    [Fact]
    public void RandomizedSvd_IsWithinFivePercentOfTheOptimum()
    {
        // A decaying spectrum (as weight deltas have): within 5 % with two power iterations.
        var sigma = Enumerable.Range(0, 150).Select(i => Math.Pow(0.93, i)).ToArray();
        using var matrix = WithSpectrum(200, 150, sigma, seed: 2);
        foreach (var rank in new[] { 4, 16 })
        {
            using var low = TruncatedSvd.Compute(matrix, rank, SvdMethod.Randomized, seed: 7);
            Assert.Null(low.DroppedNorm); // it never saw the whole spectrum
            var error = (matrix - low.Product()).norm().item<double>();
            var optimum = Math.Sqrt(sigma.Skip(rank).Sum(s => s * s));
            Assert.InRange(error / optimum, 1.0 - 1e-9, 1.05);
        }

        // Same seed, same factors.
        using var again1 = TruncatedSvd.Compute(matrix, 8, SvdMethod.Randomized, seed: 3);
        using var again2 = TruncatedSvd.Compute(matrix, 8, SvdMethod.Randomized, seed: 3);
        TensorAssert.Equal(again1.U, again2.U);
    }

    [Fact]
    public void Svd_RejectsBadRanksAndNonFiniteMatrices()
    {
        // Seeded generators throughout: the global RNG belongs to tests that seed it (dropout masks).
        using var generator = new Generator(8);
        using var matrix = randn(6, 4, dtype: ScalarType.Float64, generator: generator);
        Assert.Contains("rank 5 must be in [1, 4]", Assert.Throws<ArgumentOutOfRangeException>(() => TruncatedSvd.Compute(matrix, 5)).Message);
        matrix[2, 1] = tensor(double.NaN);
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => TruncatedSvd.Compute(matrix, 2)).Message);
    }

    [Fact]
    public void LayerMap_WhereTheTwoNearestReachEveryTeacherLayer_IsLinearAndBlendsThem()
    {
        var map = LayerMap.Build(teacherLayers: 6, studentLayers: 4);
        // Positions i·5/3: 0, 1.667, 3.333, 5.
        Assert.Equal([[(0, 1.0)], [(1, 0.333333333333), (2, 0.666666666667)], [(3, 0.666666666667), (4, 0.333333333333)], [(5, 1.0)]], map.Select(l => l.Parts.Select(p => (p.Layer, Math.Round(p.Weight, 12))).ToArray()));
        Assert.Equal("student 1 ← teacher 1 × 0.333 + teacher 2 × 0.667", map[1].ToString());
        Assert.Equal("student 0 ← teacher 0", map[0].ToString());

        Assert.Equal([0, 1, 2], LayerMap.Build(3, 3).Select(l => Assert.Single(l.Parts).Layer));
        Assert.Equal(["student 0 ← teacher 0", "student 1 ← teacher 1 × 0.5 + teacher 2 × 0.5", "student 2 ← teacher 3"], LayerMap.Build(4, 3).Select(l => l.ToString()));
        // Twice as many student layers: every teacher layer contributes.
        var deeper = LayerMap.Build(4, 7);
        Assert.Equal([0, 1, 2, 3], deeper.SelectMany(l => l.Parts.Select(p => p.Layer)).Distinct().Order());

        // Below twice the student's depth less one (step (L_T − 1)/(L_S − 1) < 2) the two nearest always
        // reach every teacher layer, so the linear map stays: ⌊p⌋ and ⌊p⌋ + 1 weighted by p's fraction.
        for (var student = 2; student <= 24; student++)
        {
            for (var teacher = 1; teacher <= 2 * student - 2; teacher++)
            {
                foreach (var layer in LayerMap.Build(teacher, student))
                {
                    var position = layer.Student * (teacher - 1) / (double)(student - 1);
                    var lower = (int)Math.Floor(position + 1e-9);
                    Assert.Equal(lower, layer.Parts[0].Layer);
                    Assert.True(layer.Parts.Length == 1 ? position - lower < 1e-9 : layer.Parts[1].Layer == lower + 1 && Math.Abs(layer.Parts[1].Weight - (position - lower)) < 1e-12, $"{teacher} → {student}: {layer}");
                }
            }
        }
    }

    [Theory]
    [InlineData(8, 4)]
    [InlineData(32, 8)]
    [InlineData(10, 4)]
    [InlineData(7, 4)] // the linear positions 0, 2, 4, 6 would skip teacher layers 1, 3 and 5
    [InlineData(5, 1)]
    public void LayerMap_DeeperTeacher_EveryTeacherLayerContributes_AndWeightsSumToOne(int teacher, int student)
    {
        var map = LayerMap.Build(teacher, student);

        Assert.Equal(student, map.Count);
        Assert.All(map, l => Assert.Equal(1.0, l.Parts.Sum(p => p.Weight), 12));
        Assert.All(map, l => Assert.All(l.Parts, p => Assert.True(p.Weight > 0, l.ToString())));
        // Equal blocks of the teacher's depth: each teacher layer's weights add up to L_S / L_T.
        var shares = map.SelectMany(l => l.Parts).GroupBy(p => p.Layer).ToDictionary(g => g.Key, g => g.Sum(p => p.Weight));
        Assert.Equal(Enumerable.Range(0, teacher), shares.Keys.Order());
        Assert.All(shares.Values, share => Assert.Equal(student / (double)teacher, share, 12));
    }

    [Fact]
    public void LayerMap_DeeperTeacher_BlocksAreTheHandComputedOnes()
    {
        // 8 → 4: blocks [2i, 2i + 2), halves; 32 → 8: four layers each, quarters.
        Assert.Equal(Enumerable.Range(0, 4).Select(i => $"student {i} ← teacher {2 * i} × 0.5 + teacher {2 * i + 1} × 0.5"), LayerMap.Build(8, 4).Select(l => l.ToString()));
        Assert.Equal("student 7 ← teacher 28 × 0.25 + teacher 29 × 0.25 + teacher 30 × 0.25 + teacher 31 × 0.25", LayerMap.Build(32, 8)[7].ToString());
        // 10 → 4: blocks of 2.5 layers; student 1 covers [2.5, 5): half of layer 2, layers 3 and 4.
        var ten = LayerMap.Build(10, 4);
        Assert.Equal([(0, 0.4), (1, 0.4), (2, 0.2)], ten[0].Parts.Select(p => (p.Layer, Math.Round(p.Weight, 12))));
        Assert.Equal([(2, 0.2), (3, 0.4), (4, 0.4)], ten[1].Parts.Select(p => (p.Layer, Math.Round(p.Weight, 12))));
        Assert.Equal(3.2, ten[1].Position, 12);
    }

    [Fact]
    public void SvdProjection_OfAPaddedMatrix_GivesBackTheMatrix()
    {
        // A teacher that is the student-shaped W padded with zero rows and columns has singular
        // vectors that vanish outside W's block: cropping them loses nothing.
        using var w = WithSpectrum(12, 8, [5, 4, 3, 2, 1, 0.5, 0.25, 0.1], seed: 4);
        using var teacher = zeros(20, 15, dtype: ScalarType.Float64);
        teacher.narrow(0, 0, 12).narrow(1, 0, 8).copy_(w);

        var (projected, method) = ShapeProjector.Project(teacher, [12, 8]);

        Assert.Equal(ProjectionMethod.Svd, method);
        TensorAssert.Close(w, projected, atol: 1e-10);
    }

    [Fact]
    public void Projection_ShapesMethodsAndTheFourierFallback()
    {
        using var generator = new Generator(9);
        using var teacher = randn(24, 16, dtype: ScalarType.Float64, generator: generator);
        var (down, method) = ShapeProjector.Project(teacher, [10, 6]);
        Assert.Equal([10, 6], down.shape);
        Assert.Equal(ProjectionMethod.Svd, method);
        var (up, _) = ShapeProjector.Project(teacher, [30, 20]);
        Assert.Equal([30, 20], up.shape);
        // Growing keeps the teacher's singular values (the extra directions are zero).
        TensorAssert.Close(linalg.svdvals(teacher), linalg.svdvals(up).narrow(0, 0, 16), atol: 1e-9);

        // When the SVD fails, the low frequencies are kept: a constant matrix stays that constant.
        using var constant = full(24, 16, 0.75, dtype: ScalarType.Float64);
        var (fourier, fallback) = ShapeProjector.Project(constant, [10, 6], (_, _) => throw new InvalidOperationException("did not converge"));
        Assert.Equal(ProjectionMethod.Fourier, fallback);
        TensorAssert.Close(full(10, 6, 0.75, dtype: ScalarType.Float64), fourier, atol: 1e-12);

        var (same, none) = ShapeProjector.Project(teacher, [24, 16]);
        Assert.Equal(ProjectionMethod.None, none);
        TensorAssert.Equal(teacher, same);
        var (vector, crop) = ShapeProjector.Project(arange(6, dtype: ScalarType.Float64), [4]);
        Assert.Equal(ProjectionMethod.Crop, crop);
        Assert.Equal([0.0, 1, 2, 3], vector.data<double>().ToArray());
        Assert.Contains("different ranks", Assert.Throws<ArgumentException>(() => ShapeProjector.Project(teacher, [24])).Message);
    }

    [Fact]
    public void KMeans_RecoversPlantedClustersWhateverTheOrder()
    {
        var random = new Random(5);
        var centres = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, 10).Select(_ => random.NextDouble() * 10).ToArray()).ToArray();
        var labels = Enumerable.Range(0, 15).Select(i => i % 3).OrderBy(_ => random.Next()).ToArray();
        var points = new double[15, 10];
        for (var i = 0; i < 15; i++)
            for (var j = 0; j < 10; j++)
                points[i, j] = centres[labels[i]][j] + (random.NextDouble() - 0.5) * 0.1;

        var clustering = KMeans.Cluster(points, null, 3, seed: 11);

        var found = clustering.Members(3).Select(m => string.Join(",", m)).Order().ToList();
        var planted = Enumerable.Range(0, 3).Select(c => string.Join(",", Enumerable.Range(0, 15).Where(i => labels[i] == c))).Order().ToList();
        Assert.Equal(planted, found);
        Assert.Equal(clustering.Assignment, KMeans.Cluster(points, null, 3, seed: 11).Assignment);
    }

    [Fact]
    public void KMeans_WeightsCentroidsAndNeverLeavesAClusterEmpty()
    {
        // Two coincident points and one apart, k = 3: every cluster still gets a member.
        var points = new double[,] { { 0.0 }, { 0.0 }, { 4.0 } };
        var clustering = KMeans.Cluster(points, [1, 1, 1], 3, seed: 1);
        Assert.All(clustering.Members(3), m => Assert.NotEmpty(m));

        // Weighted centroid: (1·0 + 3·4) / 4 = 3.
        var single = KMeans.Cluster(new double[,] { { 0.0 }, { 4.0 } }, [1, 3], 1, seed: 1);
        Assert.Equal(3.0, single.Centroids[0, 0], 12);
        Assert.Contains("1 ≤ k ≤ 2", Assert.Throws<ArgumentOutOfRangeException>(() => KMeans.Cluster(points, [1, 1, 0], 3, seed: 1)).Message);
    }
}
