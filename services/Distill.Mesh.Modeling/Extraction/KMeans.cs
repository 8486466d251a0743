
namespace Distill.Mesh.Modeling.Extraction;

/// <summary>A clustering: each point's cluster and the clusters' weighted centroids.</summary>
public sealed record Clustering(int[] Assignment, double[,] Centroids)
{
    /// <summary>The points of each cluster.</summary>
    public IReadOnlyList<int[]> Members(int clusters) =>
        Enumerable.Range(0, clusters).Select(c => Enumerable.Range(0, Assignment.Length).Where(i => Assignment[i] == c).ToArray()).ToList();
}

/// <summary>
/// Weighted k-means (Lloyd) with k-means++ seeding, deterministic for a seed. A cluster that
/// empties is re-seeded with the point farthest from its centroid, so every cluster ends with a
/// member when there are at least k points with positive weight.
/// </summary>
public static class KMeans
{
    /// <param name="points">[N, D] points.</param>
    /// <param name="weights">Point weights (≥ 0; null: all 1).</param>
    /// <param name="k">Clusters.</param>
    /// <param name="seed">Seed of the k-means++ draws.</param>
    /// <param name="maxIterations">Lloyd iterations at most.</param>
    public static Clustering Cluster(double[,] points, double[]? weights, int k, long seed, int maxIterations = 100)
    {
        var (n, d) = (points.GetLength(0), points.GetLength(1));
        weights ??= Enumerable.Repeat(1.0, n).ToArray();
        if (weights.Length != n)
            throw new ArgumentException($"{weights.Length} weights for {n} points");
        if (weights.Any(w => !(w >= 0)))
            throw new ArgumentException("weights must be non-negative");
        var live = weights.Count(w => w > 0);
        if (k < 1 || k > live)
            throw new ArgumentOutOfRangeException(nameof(k), $"k = {k} needs 1 ≤ k ≤ {live} (points with positive weight)");

        var random = new Random(unchecked((int)(seed ^ (seed >> 32))));
        var centroids = new double[k, d];
        Seed(points, weights, centroids, random);
        var assignment = new int[n];
        for (var iteration = 0; iteration < maxIterations; iteration++)
        {
            var changed = Assign(points, centroids, assignment) || iteration == 0;
            Update(points, weights, centroids, assignment);
            if (!changed)
                break;
        }

        Assign(points, centroids, assignment);
        return new Clustering(assignment, centroids);
    }

    /// <summary>k-means++: the first centre drawn by weight, each next one by weight × squared distance to the nearest centre.</summary>
    private static void Seed(double[,] points, double[] weights, double[,] centroids, Random random)
    {
        var (n, k) = (points.GetLength(0), centroids.GetLength(0));
        var chosen = new List<int> { Draw(weights, random) };
        var nearest = Enumerable.Range(0, n).Select(i => SquaredDistance(points, i, points, chosen[0])).ToArray();
        while (chosen.Count < k)
        {
            var scores = Enumerable.Range(0, n).Select(i => chosen.Contains(i) ? 0 : weights[i] * nearest[i]).ToArray();
            // All remaining weighted points coincide with centres: take any unused one with weight.
            var next = scores.Sum() > 0 ? Draw(scores, random) : Enumerable.Range(0, n).First(i => weights[i] > 0 && !chosen.Contains(i));
            chosen.Add(next);
            for (var i = 0; i < n; i++)
                nearest[i] = Math.Min(nearest[i], SquaredDistance(points, i, points, next));
        }

        for (var c = 0; c < k; c++)
            for (var j = 0; j < points.GetLength(1); j++)
                centroids[c, j] = points[chosen[c], j];
    }

    private static int Draw(double[] scores, Random random)
    {
        var total = scores.Sum();
        var target = random.NextDouble() * total;
        for (var i = 0; i < scores.Length; i++)
        {
            target -= scores[i];
            if (target < 0 && scores[i] > 0)
                return i;
        }

        return Array.FindLastIndex(scores, s => s > 0);
    }

    private static bool Assign(double[,] points, double[,] centroids, int[] assignment)
    {
        var changed = false;
        for (var i = 0; i < points.GetLength(0); i++)
        {
            // Ties keep the current cluster, so a re-seeded cluster keeps the point it was seeded with.
            var best = assignment[i];
            var bestDistance = SquaredDistance(points, i, centroids, best);
            for (var c = 0; c < centroids.GetLength(0); c++)
            {
                var distance = SquaredDistance(points, i, centroids, c);
                if (distance < bestDistance)
                    (best, bestDistance) = (c, distance);
            }

            changed |= assignment[i] != best;
            assignment[i] = best;
        }

        return changed;
    }

    private static void Update(double[,] points, double[] weights, double[,] centroids, int[] assignment)
    {
        var (n, k, d) = (points.GetLength(0), centroids.GetLength(0), points.GetLength(1));
        for (var c = 0; c < k; c++)
        {
            var mass = Enumerable.Range(0, n).Where(i => assignment[i] == c).Sum(i => weights[i]);
            if (mass <= 0)
            {
                // Empty cluster: move it onto the weighted point farthest from its own centre.
                var far = Enumerable.Range(0, n).Where(i => weights[i] > 0 && Enumerable.Range(0, n).Count(j => assignment[j] == assignment[i] && weights[j] > 0) > 1)
                    .OrderByDescending(i => SquaredDistance(points, i, centroids, assignment[i])).ThenBy(i => i).First();
                assignment[far] = c;
                for (var j = 0; j < d; j++)
                    centroids[c, j] = points[far, j];
                continue;
            }

            for (var j = 0; j < d; j++)
            {
                var sum = 0.0;
                for (var i = 0; i < n; i++)
                    if (assignment[i] == c)
                        sum += weights[i] * points[i, j];
                centroids[c, j] = sum / mass;
            }
        }
    }

    private static double SquaredDistance(double[,] a, int i, double[,] b, int j)
    {
        var sum = 0.0;
        for (var x = 0; x < a.GetLength(1); x++)
        {
            var diff = a[i, x] - b[j, x];
            sum += diff * diff;
        }

        return sum;
    }
}
