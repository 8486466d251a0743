using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Testing;

/// <summary>Tensor comparisons that fail with the shapes, dtypes and largest difference in the message.</summary>
public static class TensorAssert
{
    /// <summary>Same dtype, same shape, bit-equal values.</summary>
    public static void Equal(Tensor expected, Tensor actual, string? what = null)
    {
        Check(expected.dtype == actual.dtype, $"dtype {actual.dtype}, expected {expected.dtype}", what);
        Check(expected.shape.SequenceEqual(actual.shape), $"shape [{string.Join(", ", actual.shape)}], expected [{string.Join(", ", expected.shape)}]", what);
        Check(expected.cpu().equal(actual.cpu()).all().item<bool>(), $"values differ (max |diff| {MaxAbsDiff(expected, actual)})", what);
    }

    /// <summary>Same shape and |actual − expected| ≤ atol + rtol·|expected| everywhere (compared in float64).</summary>
    public static void Close(Tensor expected, Tensor actual, double atol, double rtol = 0, string? what = null)
    {
        Check(expected.shape.SequenceEqual(actual.shape), $"shape [{string.Join(", ", actual.shape)}], expected [{string.Join(", ", expected.shape)}]", what);
        using var scope = torch.NewDisposeScope();
        var e = expected.detach().cpu().to_type(ScalarType.Float64);
        var a = actual.detach().cpu().to_type(ScalarType.Float64);
        var ok = (a - e).abs().le(atol + rtol * e.abs()).all().item<bool>();
        Check(ok, $"max |diff| {MaxAbsDiff(expected, actual):G6} exceeds atol {atol} + rtol {rtol}", what);
    }

    /// <summary>Largest absolute elementwise difference, in float64.</summary>
    public static double MaxAbsDiff(Tensor expected, Tensor actual)
    {
        using var scope = torch.NewDisposeScope();
        var e = expected.detach().cpu().to_type(ScalarType.Float64);
        var a = actual.detach().cpu().to_type(ScalarType.Float64);
        return e.numel() == 0 ? 0 : (a - e).abs().max().item<double>();
    }

    private static void Check(bool condition, string message, string? what)
    {
        if (!condition)
            throw new Xunit.Sdk.XunitException(what is null ? message : $"{what}: {message}");
    }
}
