using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Extraction;

/// <summary>How a teacher tensor was brought into the student's shape.</summary>
public enum ProjectionMethod
{
    /// <summary>Same shape: used as is.</summary>
    None,

    /// <summary>Leading singular directions, their factors cropped (or zero-padded) to the student's rows/columns and re-orthonormalised.</summary>
    Svd,

    /// <summary>Lowest spatial frequencies of the 2-D spectrum (the fallback when the SVD fails).</summary>
    Fourier,

    /// <summary>Vectors (norms, biases): cropped or zero-padded.</summary>
    Crop,
}

/// <summary>
/// Projects teacher tensors into student shapes. A matrix W = U·diag(S)·Vᵀ keeps its
/// r = min(student rows, student columns) leading directions: U's rows are cropped (or zero-padded)
/// to the student's rows, V's to its columns, both re-orthonormalised (QR, signs kept), so the
/// result has W's leading singular values in the student's shape. When the SVD fails, the 2-D
/// spectrum's lowest frequencies are kept instead.
/// </summary>
public static class ShapeProjector
{
    /// <param name="teacher">The teacher tensor (float); returned itself when it already has the student's shape.</param>
    /// <param name="shape">The student's shape for it.</param>
    /// <param name="factorize">The SVD to use (replaceable for tests); defaults to the exact one.</param>
    public static (Tensor Projected, ProjectionMethod Method) Project(Tensor teacher, long[] shape, Func<Tensor, int, LowRank>? factorize = null)
    {
        if (teacher.shape.SequenceEqual(shape))
            return (teacher, ProjectionMethod.None);
        if (teacher.dim() != shape.Length)
            throw new ArgumentException($"cannot project a [{string.Join(", ", teacher.shape)}] tensor into [{string.Join(", ", shape)}]: different ranks");
        if (teacher.dim() == 1)
            return (Crop(teacher, shape[0]), ProjectionMethod.Crop);
        if (teacher.dim() != 2)
            throw new ArgumentException($"only vectors and matrices are projected (got [{string.Join(", ", teacher.shape)}])");
        factorize ??= (m, r) => TruncatedSvd.Compute(m, r);
        try
        {
            return (Svd(teacher, shape, factorize), ProjectionMethod.Svd);
        }
        catch (Exception e) when (e is not OutOfMemoryException && e is not ArgumentException)
        {
            return (Fourier(teacher, shape), ProjectionMethod.Fourier);
        }
    }

    private static Tensor Crop(Tensor vector, long length)
    {
        if (length <= vector.shape[0])
            return vector.narrow(0, 0, length).clone();
        return torch.cat([vector, torch.zeros(length - vector.shape[0], dtype: vector.dtype, device: vector.device)]);
    }

    private static Tensor Svd(Tensor teacher, long[] shape, Func<Tensor, int, LowRank> factorize)
    {
        using var scope = torch.NewDisposeScope();
        var rank = (int)Math.Min(Math.Min(shape[0], shape[1]), Math.Min(teacher.shape[0], teacher.shape[1]));
        using var factors = factorize(teacher, rank);
        var u = Orthonormal(CropRows(factors.U, shape[0]));
        var v = Orthonormal(CropRows(factors.V, shape[1]));
        return (u * factors.S.unsqueeze(0)).matmul(v.t()).MoveToOuterDisposeScope();
    }

    private static Tensor CropRows(Tensor factor, long rows) =>
        rows <= factor.shape[0] ? factor.narrow(0, 0, rows) : torch.cat([factor, torch.zeros(rows - factor.shape[0], factor.shape[1], dtype: factor.dtype, device: factor.device)]);

    /// <summary>QR with the signs fixed so diag(R) ≥ 0: the columns keep their direction.</summary>
    private static Tensor Orthonormal(Tensor columns)
    {
        var (q, r) = torch.linalg.qr(columns, torch.linalg.QRMode.Reduced);
        var signs = torch.where(r.diagonal() < 0, -1.0, 1.0).to_type(q.dtype);
        return q * signs.unsqueeze(0);
    }

    /// <summary>Keeps the frequencies of smallest magnitude along each axis; values keep their scale.</summary>
    internal static Tensor Fourier(Tensor teacher, long[] shape)
    {
        using var scope = torch.NewDisposeScope();
        var spectrum = torch.fft.fft2(teacher.to_type(ScalarType.Float64), norm: FFTNormType.Forward);
        var kept = torch.zeros(shape[0], shape[1], dtype: ScalarType.ComplexFloat64, device: teacher.device);
        var (rows, columns) = (Frequencies(teacher.shape[0], shape[0]), Frequencies(teacher.shape[1], shape[1]));
        foreach (var (from, to, count) in rows)
        {
            foreach (var (fromColumn, toColumn, countColumns) in columns)
                kept.narrow(0, to, count).narrow(1, toColumn, countColumns).copy_(spectrum.narrow(0, from, count).narrow(1, fromColumn, countColumns));
        }

        return torch.fft.ifft2(kept, norm: FFTNormType.Forward).real.to_type(teacher.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Blocks (source index, target index, length) of the non-negative and negative low frequencies both axes share.</summary>
    private static (long From, long To, long Count)[] Frequencies(long source, long target)
    {
        var size = Math.Min(source, target);
        var positive = (size + 1) / 2;
        var negative = size - positive;
        return negative == 0
            ? [(0, 0, positive)]
            : [(0, 0, positive), (source - negative, target - negative, negative)];
    }
}
