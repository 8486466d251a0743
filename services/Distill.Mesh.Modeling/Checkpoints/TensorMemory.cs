using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Checkpoints;

/// <summary>
/// Raw access to a CPU tensor's storage. TorchSharp's <c>Tensor.bytes</c> is a Span and stops at
/// 2 GiB; embedding matrices of large vocabularies are bigger, so copies go through pointers.
/// </summary>
internal static unsafe class TensorMemory
{
    private const long CopyBlock = 64L << 20;

    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);

    /// <summary>Pointer to the first element of a contiguous CPU tensor.</summary>
    public static byte* DataPointer(Tensor tensor)
    {
        if (tensor.device_type != DeviceType.CPU)
            throw new ArgumentException($"tensor is on {tensor.device}, expected CPU", nameof(tensor));
        if (!tensor.is_contiguous())
            throw new ArgumentException("tensor is not contiguous", nameof(tensor));
        var pointer = THSTensor_data(tensor.Handle);
        if (pointer == IntPtr.Zero && tensor.numel() > 0)
            torch.CheckForErrors();
        return (byte*)pointer;
    }

    /// <summary>Byte size of a tensor's elements.</summary>
    public static long ByteLength(Tensor tensor) => tensor.numel() * tensor.element_size();

    /// <summary>Copies <paramref name="length"/> bytes in blocks (no 2 GiB limit).</summary>
    public static void Copy(byte* source, byte* destination, long length)
    {
        for (long done = 0; done < length; done += CopyBlock)
        {
            var n = Math.Min(CopyBlock, length - done);
            Buffer.MemoryCopy(source + done, destination + done, n, n);
        }
    }
}
