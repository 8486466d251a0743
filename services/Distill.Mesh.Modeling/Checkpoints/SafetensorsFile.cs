using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Checkpoints;

/// <summary>
/// A safetensors file opened read-only and memory-mapped: tensors are copied straight from the
/// page cache into their destination, so loading never holds a second copy of the checkpoint.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _data;
    private bool _disposed;

    private SafetensorsFile(string path, SafetensorsHeader header, MemoryMappedFile map, MemoryMappedViewAccessor view, long dataStart)
    {
        Path = path;
        Header = header;
        _map = map;
        _view = view;
        byte* basePointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePointer);
        _data = basePointer + view.PointerOffset + dataStart;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>The validated header.</summary>
    public SafetensorsHeader Header { get; }

    /// <summary>Tensor entries in data order.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors => Header.Tensors;

    /// <summary>The <c>__metadata__</c> map.</summary>
    public IReadOnlyDictionary<string, string> Metadata => Header.Metadata;

    /// <summary>Opens and validates a file; throws <see cref="CheckpointFormatException"/> for a malformed one.</summary>
    public static SafetensorsFile Open(string path, long maxHeaderBytes = SafetensorsHeader.MaxHeaderBytes)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data is little-endian; big-endian hosts are not supported");

        Specs.Storage.RegularFile.Require(path);
        long fileLength;
        byte[] headerBytes;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            fileLength = stream.Length;
            if (fileLength < 8)
                throw new CheckpointFormatException($"{path}: {fileLength} bytes is too short for a safetensors file (needs an 8-byte header length)");
            Span<byte> prefix = stackalloc byte[8];
            stream.ReadExactly(prefix);
            var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (headerLength > (ulong)maxHeaderBytes)
                throw new CheckpointFormatException($"{path}: header length {headerLength} exceeds the {maxHeaderBytes}-byte cap");
            if ((long)headerLength > fileLength - 8)
                throw new CheckpointFormatException($"{path}: header length {headerLength} runs past the end of the file ({fileLength} bytes); the file is truncated or not safetensors");
            headerBytes = new byte[headerLength];
            stream.ReadExactly(headerBytes);
        }

        var dataStart = 8 + headerBytes.LongLength;
        var header = SafetensorsHeader.Parse(headerBytes, fileLength - dataStart, path);
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, 0, MemoryMappedFileAccess.Read);
        try
        {
            var view = map.CreateViewAccessor(0, fileLength, MemoryMappedFileAccess.Read);
            return new SafetensorsFile(path, header, map, view, dataStart);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <summary>Whether the file holds a tensor of this name.</summary>
    public bool Contains(string name) => Header.ByName.ContainsKey(name);

    /// <summary>The entry of a tensor; throws <see cref="KeyNotFoundException"/> naming the file.</summary>
    public SafetensorsTensorInfo GetInfo(string name) =>
        Header.ByName.TryGetValue(name, out var info)
            ? info
            : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");

    /// <summary>The raw little-endian bytes of a tensor (under 2 GiB; use <see cref="CopyInto"/> for larger).</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var info = GetInfo(name);
        if (info.ByteLength > int.MaxValue)
            throw new NotSupportedException($"{Path}: tensor '{name}' is {info.ByteLength} bytes; read it with ReadTensor or CopyInto");
        ThrowIfDisposed();
        return new ReadOnlySpan<byte>(_data + info.Begin, (int)info.ByteLength);
    }

    /// <summary>A slice of a tensor's stored bytes (any tensor size).</summary>
    public ReadOnlySpan<byte> GetBytes(string name, long offset, int length)
    {
        var info = GetInfo(name);
        if (offset < 0 || length < 0 || offset + length > info.ByteLength)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{Path}: bytes [{offset}, {offset + length}) are outside tensor '{name}' ({info.ByteLength} bytes)");
        ThrowIfDisposed();
        return new ReadOnlySpan<byte>(_data + info.Begin + offset, length);
    }

    /// <summary>Reads a tensor into a new CPU tensor of its stored dtype.</summary>
    public Tensor ReadTensor(string name)
    {
        var info = GetInfo(name);
        ThrowIfDisposed();
        var tensor = torch.empty(info.Shape, info.DType.ToScalarType());
        TensorMemory.Copy(_data + info.Begin, TensorMemory.DataPointer(tensor), info.ByteLength);
        return tensor;
    }

    /// <summary>
    /// Copies a tensor into an existing one of the same shape (e.g. a model parameter), converting
    /// dtype and device as needed. A contiguous CPU destination of the stored dtype is filled
    /// directly from the mapped file, with no intermediate tensor.
    /// </summary>
    public void CopyInto(string name, Tensor destination)
    {
        var info = GetInfo(name);
        if (!destination.shape.SequenceEqual(info.Shape))
            throw new CheckpointFormatException(
                $"{Path}: tensor '{name}' has shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", destination.shape)}]");
        ThrowIfDisposed();
        using var noGrad = torch.no_grad();
        if (destination.device_type == DeviceType.CPU && destination.is_contiguous()
            && destination.dtype == info.DType.ToScalarType())
        {
            TensorMemory.Copy(_data + info.Begin, TensorMemory.DataPointer(destination), info.ByteLength);
            return;
        }

        using var staged = ReadTensor(name);
        destination.copy_(staged);
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
