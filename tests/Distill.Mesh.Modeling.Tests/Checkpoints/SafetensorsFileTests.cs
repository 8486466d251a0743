using System.Buffers.Binary;
using System.Text;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Checkpoints;

public class SafetensorsFileTests
{
    private static readonly double[] RangeMinus3To2 = [-3, -2, -1, 0, 1, 2];

    [Theory]
    [InlineData("b.safetensors", "b")]
    [InlineData("B.safetensors", "B")]
    [InlineData("h.safetensors", "h")]
    [InlineData("i.safetensors", "i")]
    [InlineData("e.safetensors", "e")]
    [InlineData("f.safetensors", "f")]
    [InlineData("d.safetensors", "d")]
    public void Open_SharedSample_DecodesRangeAndMetadata(string file, string name)
    {
        using var st = SafetensorsFile.Open(SharedData.PathOf("safetensors", file));

        Assert.Equal("a", st.Metadata["test"]);
        using var tensor = st.ReadTensor(name);
        Assert.Equal([6L], tensor.shape);
        var values = tensor.to_type(ScalarType.Float64).data<double>().ToArray();
        // U8 wraps: numpy's range(-3, 3) cast to uint8 is 253, 254, 255, 0, 1, 2.
        var expected = st.GetInfo(name).DType == SafetensorsDType.U8 ? [253, 254, 255, 0, 1, 2] : RangeMinus3To2;
        Assert.Equal(expected, values);
    }

    [Fact]
    public void Open_OverallSample_ListsEveryDtypeIncludingUnsigned()
    {
        using var st = SafetensorsFile.Open(SharedData.PathOf("safetensors", "overall.safetensors"));

        Assert.Equal(["B", "H", "I", "b", "d", "e", "f", "h", "i"], st.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        // Unsigned 16/32-bit have no TorchSharp type: decode the raw little-endian bytes.
        var h = st.GetBytes("H").ToArray();
        Assert.Equal(new ushort[] { 65533, 65534, 65535, 0, 1, 2 }, Enumerable.Range(0, 6).Select(k => BinaryPrimitives.ReadUInt16LittleEndian(h.AsSpan(2 * k))));
        var i = st.GetBytes("I").ToArray();
        Assert.Equal(new uint[] { 4294967293, 4294967294, 4294967295, 0, 1, 2 }, Enumerable.Range(0, 6).Select(k => BinaryPrimitives.ReadUInt32LittleEndian(i.AsSpan(4 * k))));
        Assert.Throws<NotSupportedException>(() => st.ReadTensor("H"));
    }

    [Fact]
    public void Write_EveryTorchDtype_RoundTripsBitExactWithMetadata()
    {
        using var dir = new TempFolder();
        var path = dir.Combine("all.safetensors");
        var source = torch.linspace(-4, 4, 24, dtype: ScalarType.Float64).reshape(2, 3, 4);
        ScalarType[] types = [ScalarType.Float64, ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Int64,
            ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool];
        var tensors = types.Select(t => KeyValuePair.Create(t.ToString(), source.to_type(t))).ToList();
        tensors.Add(KeyValuePair.Create("scalar", torch.tensor(7.5f)));
        tensors.Add(KeyValuePair.Create("empty", torch.zeros(0, 5)));

        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ü" });

        using var st = SafetensorsFile.Open(path);
        Assert.Equal("ü", st.Metadata["note"]);
        foreach (var (name, expected) in tensors)
        {
            using var actual = st.ReadTensor(name);
            TensorAssert.Equal(expected, actual, name);
        }

        var bytes = File.ReadAllBytes(path);
        Assert.Equal(0, (8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes)) % 8);
    }

    [Fact]
    public void CopyInto_ConvertsDtypeAndChecksShape()
    {
        using var dir = new TempFolder();
        var path = dir.Combine("w.safetensors");
        var w = torch.arange(12, dtype: ScalarType.Float32).reshape(3, 4);
        SafetensorsWriter.Write(path, [KeyValuePair.Create("w", w)]);
        using var st = SafetensorsFile.Open(path);

        var bf16 = torch.zeros(3, 4, dtype: ScalarType.BFloat16);
        st.CopyInto("w", bf16);
        TensorAssert.Equal(w, bf16.to_type(ScalarType.Float32));

        var error = Assert.Throws<CheckpointFormatException>(() => st.CopyInto("w", torch.zeros(4, 3)));
        Assert.Contains("'w' has shape [3, 4], expected [4, 3]", error.Message);
    }

    [Fact]
    public void Write_FailureMidway_LeavesPreviousFileAndNoTemp()
    {
        using var dir = new TempFolder();
        var path = dir.Combine("model.safetensors");
        SafetensorsWriter.Write(path, [KeyValuePair.Create("a", torch.ones(4))]);
        var before = File.ReadAllBytes(path);

        // A meta tensor has a shape but no data: the header is written, then copying its data fails.
        var meta = torch.empty(new long[] { 8 }, device: torch.device("meta"));
        Assert.ThrowsAny<Exception>(() => SafetensorsWriter.Write(path, [KeyValuePair.Create("a", torch.ones(4)), KeyValuePair.Create("b", meta)]));

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void CopyInto_TensorLargerThan2GiB_RoundTrips()
    {
        using var dir = TempFolder.InMemory();
        var path = dir.Combine("big.safetensors");
        const long length = (1L << 31) + 24;
        long[] probes = [0, 1, int.MaxValue - 1, int.MaxValue, int.MaxValue + 1L, length - 1];
        using (var big = torch.zeros(length, dtype: ScalarType.Byte))
        {
            for (var k = 0; k < probes.Length; k++)
                big[probes[k]] = torch.tensor((byte)(k + 1));
            SafetensorsWriter.Write(path, [KeyValuePair.Create("big", big)]);
        }

        using var st = SafetensorsFile.Open(path);
        Assert.Equal(length, st.GetInfo("big").ByteLength);
        using var loaded = torch.empty(length, dtype: ScalarType.Byte);
        st.CopyInto("big", loaded);
        for (var k = 0; k < probes.Length; k++)
            Assert.Equal((byte)(k + 1), loaded[probes[k]].item<byte>());
        // A window across the 2 GiB boundary holds exactly its two probes (a full sum takes ~20 s).
        using var window = loaded.narrow(0, int.MaxValue - 1000L, 1020);
        Assert.Equal(3 + 4 + 5, window.to_type(ScalarType.Int64).sum().item<long>());
    }

    public static TheoryData<string, byte[], string> HostileFiles() => new()
    {
        { "too short", [1, 2, 3], "too short" },
        { "header length past end", Prefix(1000, "{}"), "runs past the end of the file" },
        { "header over cap", Prefix(200_000_000, "{}"), "exceeds the" },
        { "invalid json", Build("{\"a\": {", 0), "not valid JSON" },
        { "header not object", Build("[1, 2]", 0), "must be a JSON object" },
        { "unknown dtype", Build("{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16), "unknown dtype 'F128'" },
        { "numeric dtype", Build("{\"a\":{\"dtype\":\"3\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "unknown dtype '3'" },
        { "missing dtype", Build("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "missing string field 'dtype'" },
        { "offsets out of bounds", Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8), "run past the end of the data" },
        { "offsets reversed", Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8), "invalid data_offsets" },
        { "shape mismatch", Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16), "needs 12" },
        { "negative dimension", Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16), "negative dimension" },
        { "shape overflow", Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,16]}}", 16), "overflows" },
        { "overlap", Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "overlaps" },
        { "hole", Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "hole in the data" },
        { "trailing bytes", Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12), "8 trailing bytes" },
        { "duplicate names", Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "duplicate name 'a'" },
        { "metadata not strings", Build("{\"__metadata__\":{\"x\":1}}", 0), "is not a string" },
        { "truncated data", Truncate(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16), 6), "may be truncated" },
        // Enum.TryParse read each of these as F32.
        { "dtype with a space", Build("{\"a\":{\"dtype\":\" F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "unknown dtype ' F32'" },
        { "dtype as a signed number", Build("{\"a\":{\"dtype\":\"+9\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "unknown dtype '+9'" },
        { "dtype as flags", Build("{\"a\":{\"dtype\":\"U8,U32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "unknown dtype 'U8,U32'" },
        { "duplicate dtype field", Build("{\"a\":{\"dtype\":\"F64\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "field 'dtype' appears twice" },
        { "duplicate shape field", Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "field 'shape' appears twice" },
        { "name not UTF-8", BuildBytes([.. "{\""u8, 0xC3, 0x28, .. "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"u8], 4), "not valid UTF-8" },
        { "metadata not UTF-8", BuildBytes([.. "{\"__metadata__\":{\"x\":\""u8, 0xFF, 0xFE, .. "\"}}"u8], 0), "not valid UTF-8" },
    };

    [Theory]
    [MemberData(nameof(HostileFiles))]
    public void Open_HostileFile_ThrowsNamingTheProblem(string _, byte[] content, string expected)
    {
        using var dir = new TempFolder();
        var path = dir.Combine("hostile.safetensors");
        File.WriteAllBytes(path, content);

        var error = Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Open(path).Dispose());

        Assert.Contains(expected, error.Message);
        Assert.StartsWith(path, error.Message);
    }

    [Fact]
    public async Task Open_AFifo_IsRefusedAtOnce_InsteadOfWaitingForAWriter()
    {
        using var dir = new TempFolder();
        var path = dir.Combine("model.safetensors");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [path]))
            mkfifo.WaitForExit();
        Assert.True(File.Exists(path), "mkfifo did not create the FIFO");

        // On the old code this open blocked for good; the timeout turns that into a failure.
        var error = await Assert.ThrowsAsync<IOException>(() => Task.Run(() => SafetensorsFile.Open(path)).WaitAsync(TimeSpan.FromSeconds(20)));

        Assert.Contains("is not a regular file", error.Message);
    }

    private static byte[] Prefix(ulong headerLength, string json)
    {
        var bytes = new byte[8 + json.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength);
        Encoding.UTF8.GetBytes(json).CopyTo(bytes, 8);
        return bytes;
    }

    private static byte[] Build(string json, int dataBytes) => BuildBytes(Encoding.UTF8.GetBytes(json), dataBytes);

    private static byte[] BuildBytes(byte[] header, int dataBytes)
    {
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        return bytes;
    }

    private static byte[] Truncate(byte[] bytes, int drop) => bytes[..^drop];
}
