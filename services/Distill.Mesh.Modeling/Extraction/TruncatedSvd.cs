using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Extraction;

/// <summary>How a low-rank factorisation is computed.</summary>
public enum SvdMethod
{
    /// <summary>LAPACK's full thin SVD, truncated: the best rank-r approximation (Eckart–Young).</summary>
    Exact,

    /// <summary>Halko–Martinsson–Tropp randomized range finder with power iterations; seeded.</summary>
    Randomized,
}

/// <summary>A rank-r factorisation M ≈ U·diag(S)·Vᵀ.</summary>
/// <param name="U">Left singular vectors [m, r].</param>
/// <param name="S">Singular values [r], largest first.</param>
/// <param name="V">Right singular vectors [n, r].</param>
/// <param name="DroppedNorm">
/// sqrt(Σ σ_i², i &gt; r) — the Eckart–Young error ‖M − M_r‖_F — when the method saw the whole
/// spectrum (exact); null for the randomized method.
/// </param>
public sealed record LowRank(Tensor U, Tensor S, Tensor V, double? DroppedNorm = null) : IDisposable
{
    /// <summary>U·diag(S)·Vᵀ.</summary>
    public Tensor Product() => (U * S.unsqueeze(0)).matmul(V.t());

    public void Dispose()
    {
        U.Dispose();
        S.Dispose();
        V.Dispose();
    }
}

/// <summary>Truncated singular value decompositions of matrices.</summary>
public static class TruncatedSvd
{
    /// <summary>The leading <paramref name="rank"/> singular triplets of <paramref name="matrix"/> [m, n].</summary>
    /// <param name="matrix">The matrix (any float dtype; the work is done in its dtype).</param>
    /// <param name="rank">Kept directions (at most min(m, n)).</param>
    /// <param name="method">Exact or randomized.</param>
    /// <param name="oversample">Extra random directions of the randomized method.</param>
    /// <param name="powerIterations">Power iterations of the randomized method (sharpen a slowly decaying spectrum).</param>
    /// <param name="seed">Seed of the randomized method's test matrix.</param>
    public static LowRank Compute(Tensor matrix, int rank, SvdMethod method = SvdMethod.Exact, int oversample = 8, int powerIterations = 2, long seed = 0)
    {
        if (matrix.dim() != 2)
            throw new ArgumentException($"SVD needs a matrix, got shape [{string.Join(", ", matrix.shape)}]");
        var (m, n) = (matrix.shape[0], matrix.shape[1]);
        if (rank < 1 || rank > Math.Min(m, n))
            throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} must be in [1, {Math.Min(m, n)}] for a [{m}, {n}] matrix");
        if (!matrix.isfinite().all().item<bool>())
            throw new ArgumentException("the matrix has NaN or infinite entries");
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var (u, s, v, dropped) = method == SvdMethod.Exact ? Exact(matrix, rank) : Randomized(matrix, rank, oversample, powerIterations, seed);
        return new LowRank(u.contiguous().MoveToOuterDisposeScope(), s.contiguous().MoveToOuterDisposeScope(), v.contiguous().MoveToOuterDisposeScope(), dropped);
    }

    /// <summary>All singular values, largest first (for the Eckart–Young optimum).</summary>
    public static Tensor SingularValues(Tensor matrix)
    {
        using var noGrad = torch.no_grad();
        return torch.linalg.svdvals(matrix);
    }

    /// <summary>
    /// ‖M − M_r‖_F of the best rank-r approximation, from the singular values:
    /// sqrt(Σ_{i &gt; r} σ_i²).
    /// </summary>
    public static double OptimalError(Tensor singularValues, int rank)
    {
        using var scope = torch.NewDisposeScope();
        var tail = singularValues.to_type(ScalarType.Float64).narrow(0, rank, singularValues.shape[0] - rank);
        return Math.Sqrt(tail.square().sum().item<double>());
    }

    private static (Tensor U, Tensor S, Tensor V, double? Dropped) Exact(Tensor matrix, int rank)
    {
        var (u, s, vh) = torch.linalg.svd(matrix, fullMatrices: false);
        return (u.narrow(1, 0, rank), s.narrow(0, 0, rank), vh.narrow(0, 0, rank).t(), OptimalError(s, rank));
    }

    private static (Tensor U, Tensor S, Tensor V, double? Dropped) Randomized(Tensor matrix, int rank, int oversample, int powerIterations, long seed)
    {
        var (m, n) = (matrix.shape[0], matrix.shape[1]);
        var width = (int)Math.Min(rank + Math.Max(0, oversample), Math.Min(m, n));
        using var generator = new Generator((ulong)seed);
        var omega = torch.randn(n, width, dtype: matrix.dtype, device: matrix.device, generator: generator);
        // Range finder: Q spans the leading column space of M (power iterations re-orthonormalised
        // each time so small singular values do not vanish in rounding).
        var q = Orthonormal(matrix.matmul(omega));
        for (var i = 0; i < powerIterations; i++)
        {
            var z = Orthonormal(matrix.t().matmul(q));
            q = Orthonormal(matrix.matmul(z));
        }

        var (ub, s, vh) = torch.linalg.svd(q.t().matmul(matrix), fullMatrices: false);
        var u = q.matmul(ub);
        return (u.narrow(1, 0, rank), s.narrow(0, 0, rank), vh.narrow(0, 0, rank).t(), null);
    }

    private static Tensor Orthonormal(Tensor columns) => torch.linalg.qr(columns, torch.linalg.QRMode.Reduced).Q;
}
