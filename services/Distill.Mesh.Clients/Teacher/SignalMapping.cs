using Distill.Mesh.Contracts.Teacher.V1;
using Distill.Mesh.Training.Teachers;
using Google.Protobuf;

namespace Distill.Mesh.Clients.Teacher;

/// <summary>Maps packed signals and requests between the contract and the engine's types.</summary>
public static class SignalMapping
{
    public static SignalPrecision ToPrecision(ValuePrecision precision) => precision switch
    {
        ValuePrecision.Fp32 => SignalPrecision.Fp32,
        ValuePrecision.Fp16 => SignalPrecision.Fp16,
        ValuePrecision.Bf16 => SignalPrecision.Bf16,
        ValuePrecision.Q8 => SignalPrecision.Q8,
        _ => throw new ArgumentException($"signal.precision must be fp32, fp16, bf16 or q8 (got {precision})"),
    };

    public static ValuePrecision FromPrecision(SignalPrecision precision) => precision switch
    {
        SignalPrecision.Fp32 => ValuePrecision.Fp32,
        SignalPrecision.Fp16 => ValuePrecision.Fp16,
        SignalPrecision.Bf16 => ValuePrecision.Bf16,
        _ => ValuePrecision.Q8,
    };

    /// <summary>The contract's form of a signal request (what a Score request carries).</summary>
    public static SignalSpec ToSpec(SignalRequest request) => new()
    {
        Format = request.Format == Training.Teachers.SignalFormat.TopK ? Contracts.Teacher.V1.SignalFormat.TopK : Contracts.Teacher.V1.SignalFormat.Sampled,
        K = request.Format == Training.Teachers.SignalFormat.TopK ? request.K : request.Samples,
        Temperature = request.Temperature,
        Precision = FromPrecision(request.Precision),
        Vocabulary = request.Vocabulary,
        Seed = unchecked((ulong)request.Seed),
    };

    public static ScoreResponse ToResponse(string requestId, EncodedSignal signal, bool fromCache) => new()
    {
        RequestId = requestId,
        Positions = signal.Positions,
        K = signal.K,
        IdBits = signal.IdBits,
        Ids = ByteString.CopyFrom(signal.Ids),
        Precision = FromPrecision(signal.Precision),
        Values = ByteString.CopyFrom(signal.Values),
        ValueScales = ByteString.CopyFrom(signal.ValueScales),
        TailMass = ByteString.CopyFrom(signal.TailMass),
        SampledLogProbs = ByteString.CopyFrom(signal.SampledLogProbs),
        FromCache = fromCache,
    };

    public static EncodedSignal FromResponse(ScoreResponse response, bool sampled) => new(
        sampled, response.Positions, response.K, response.IdBits, response.Ids.ToByteArray(), ToPrecision(response.Precision),
        response.Values.ToByteArray(), response.ValueScales.ToByteArray(), response.TailMass.ToByteArray(), response.SampledLogProbs.ToByteArray());

    public static ByteString PackIds(ReadOnlySpan<int> ids)
    {
        var bytes = new byte[ids.Length * 4];
        for (var i = 0; i < ids.Length; i++)
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4 * i), ids[i]);
        return ByteString.CopyFrom(bytes);
    }

    public static int[] UnpackIds(ByteString bytes, string field)
    {
        if (bytes.Length % 4 != 0)
            throw new ArgumentException($"{field} must be packed int32 little-endian ({bytes.Length} bytes is not a multiple of 4)");
        var span = bytes.Span;
        var ids = new int[bytes.Length / 4];
        for (var i = 0; i < ids.Length; i++)
            ids[i] = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(span[(4 * i)..]);
        return ids;
    }
}
