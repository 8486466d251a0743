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
    public void LayerMap_IsLinearAndBlendsTheNearestTeacherLayers()
    {
        var map = LayerMap.Build(teacherLayers: 8, studentLayers: 4);
        // Positions i·7/3: 0, 2.333, 4.667, 7.
        Assert.Equal([0, 2, 4, 7], map.Select(l => l.Lower));
        Assert.Equal([0, 3, 5, 7], map.Select(l => l.Upper));
        Assert.Equal(0, map[0].UpperWeight);
        Assert.Equal(1.0 / 3, map[1].UpperWeight, 1e-12);
        Assert.Equal(2.0 / 3, map[2].UpperWeight, 1e-12);
        Assert.Equal(0, map[3].UpperWeight);
        Assert.Equal("student 1 ← teacher 2 × 0.667 + teacher 3 × 0.333", map[1].ToString());

        Assert.Equal([0, 1, 2], LayerMap.Build(3, 3).Select(l => l.Lower));
        Assert.All(LayerMap.Build(3, 3), l => Assert.Equal(0, l.UpperWeight));
        var single = Assert.Single(LayerMap.Build(5, 1));
        Assert.Equal((2, 2), (single.Lower, single.Upper));
        // Twice as many student layers: every teacher layer contributes.
        var deeper = LayerMap.Build(4, 7);
        Assert.Equal([0, 1, 2, 3], deeper.SelectMany(l => new[] { l.Lower, l.Upper }).Distinct().Order());
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
