using System.Buffers.Binary;
using Distill.Mesh.Modeling.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Teachers;

/// <summary>
/// Packs top-k and sampled teacher signals into bytes and back. Ids take ⌈log₂ V⌉ bits each;
/// log-probabilities take 32, 16 or 8 bits (Q8 stores per position the minimum log-probability and
/// 8-bit codes over [minimum, 0]: steps of ~0.05 nat for a top-64 range); the tail mass is float16.
/// </summary>
public static class SignalCodec
{
    public static int IdBits(int vocabulary) => Math.Max(1, (int)Math.Ceiling(Math.Log2(Math.Max(2, vocabulary))));

    public static EncodedSignal Encode(TeacherTarget target, SignalPrecision precision, int vocabulary)
    {
        var bits = IdBits(vocabulary);
        switch (target)
        {
            case TopKTeacherSignal topK:
            {
                var (positions, k) = ((int)topK.Ids.shape[0], (int)topK.Ids.shape[1]);
                var logProbs = topK.LogProbs.to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
                var tail = topK.TailMass?.to_type(ScalarType.Float32).data<float>().ToArray() ?? TailOf(logProbs, positions, k);
                var (values, scales) = EncodeValues(logProbs, positions, k, precision);
                // With fp32 values the tail is fp32 too, so an fp32 signal reproduces in-process numbers.
                var tailBytes = precision == SignalPrecision.Fp32 ? EncodeValues(tail, positions, 1, SignalPrecision.Fp32).Values : Halves(tail);
                return new EncodedSignal(false, positions, k, bits, PackIds(topK.Ids, bits), precision, values, scales, tailBytes, []);
            }

            case SampledTeacherSignal sampled:
            {
                var (positions, k) = ((int)sampled.Ids.shape[0], (int)sampled.Ids.shape[1]);
                var weights = sampled.Weights.to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
                var logProbs = sampled.LogProbs.to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
                // Weights are positive, not log-probabilities: keep them at least float16.
                var weightPrecision = precision == SignalPrecision.Q8 ? SignalPrecision.Fp16 : precision;
                var (values, _) = EncodeValues(weights, positions, k, weightPrecision);
                var (logs, scales) = EncodeValues(logProbs, positions, k, precision);
                return new EncodedSignal(true, positions, k, bits, PackIds(sampled.Ids, bits), precision, values, scales, [], logs);
            }

            default:
                throw new ArgumentException($"only top-k and sampled signals are packed, not {target.GetType().Name}");
        }
    }

    public static TeacherTarget Decode(EncodedSignal signal, Device? device = null)
    {
        var count = signal.Positions * signal.K;
        var ids = UnpackIds(signal.Ids, signal.IdBits, count);
        var idTensor = torch.tensor(ids, device: device).reshape(signal.Positions, signal.K);
        if (signal.Sampled)
        {
            var weightPrecision = signal.Precision == SignalPrecision.Q8 ? SignalPrecision.Fp16 : signal.Precision;
            var weights = DecodeValues(signal.Values, [], signal.Positions, signal.K, weightPrecision);
            var logs = DecodeValues(signal.SampledLogProbs, signal.ValueScales, signal.Positions, signal.K, signal.Precision);
            return new SampledTeacherSignal(idTensor, Tensor(weights, signal, device), Tensor(logs, signal, device));
        }

        var values = DecodeValues(signal.Values, signal.ValueScales, signal.Positions, signal.K, signal.Precision);
        var tail = signal.Precision == SignalPrecision.Fp32 ? DecodeValues(signal.TailMass, [], signal.Positions, 1, SignalPrecision.Fp32) : FromHalves(signal.TailMass);
        return new TopKTeacherSignal(idTensor, Tensor(values, signal, device), TopKMode.Tail, torch.tensor(tail, device: device));
    }

    private static float[] TailOf(float[] logProbs, int positions, int k)
    {
        var tail = new float[positions];
        for (var p = 0; p < positions; p++)
        {
            double mass = 0;
            for (var j = 0; j < k; j++)
                mass += Math.Exp(logProbs[p * k + j]);
            tail[p] = (float)Math.Max(0, 1 - mass);
        }

        return tail;
    }

    private static Tensor Tensor(float[] values, EncodedSignal signal, Device? device) =>
        torch.tensor(values, device: device).reshape(signal.Positions, signal.K);

    /// <summary>Little-endian bit packing through a 64-bit accumulator (ids are at most 32 bits).</summary>
    private static byte[] PackIds(Tensor ids, int bits)
    {
        var values = ids.to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
        var bytes = new byte[(values.LongLength * bits + 7) / 8];
        ulong buffer = 0;
        var held = 0;
        var at = 0;
        foreach (var value in values)
        {
            if (value < 0 || value >= 1L << bits)
                throw new ArgumentException($"token id {value} does not fit in {bits} bits");
            buffer |= (ulong)value << held;
            held += bits;
            while (held >= 8)
            {
                bytes[at++] = (byte)buffer;
                buffer >>= 8;
                held -= 8;
            }
        }

        if (held > 0)
            bytes[at] = (byte)buffer;
        return bytes;
    }

    private static long[] UnpackIds(byte[] bytes, int bits, int count)
    {
        if ((long)count * bits > bytes.LongLength * 8)
            throw new ArgumentException($"packed ids hold {bytes.Length} bytes, too few for {count} ids of {bits} bits");
        var ids = new long[count];
        var mask = (1UL << bits) - 1;
        ulong buffer = 0;
        var held = 0;
        var at = 0;
        for (var i = 0; i < count; i++)
        {
            while (held < bits)
            {
                buffer |= (ulong)bytes[at++] << held;
                held += 8;
            }

            ids[i] = (long)(buffer & mask);
            buffer >>= bits;
            held -= bits;
        }

        return ids;
    }

    private static (byte[] Values, byte[] Scales) EncodeValues(float[] values, int positions, int k, SignalPrecision precision)
    {
        switch (precision)
        {
            case SignalPrecision.Fp32:
            {
                var bytes = new byte[values.Length * 4];
                for (var i = 0; i < values.Length; i++)
                    BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
                return (bytes, []);
            }

            case SignalPrecision.Fp16:
                return (Halves(values), []);
            case SignalPrecision.Bf16:
            {
                var bytes = new byte[values.Length * 2];
                for (var i = 0; i < values.Length; i++)
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), ToBFloat16(values[i]));
                return (bytes, []);
            }

            case SignalPrecision.Q8:
            {
                const int levels = 255;
                var minima = new float[positions];
                var codes = new byte[values.Length];
                for (var p = 0; p < positions; p++)
                {
                    // The scale is stored as float16: quantise against the value it decodes to.
                    var min = 0f;
                    for (var j = 0; j < k; j++)
                        min = Math.Min(min, values[p * k + j]);
                    min = (float)(Half)min;
                    minima[p] = min;
                    for (var j = 0; j < k; j++)
                    {
                        var v = values[p * k + j];
                        var code = min == 0 ? 0 : (int)Math.Round(Math.Clamp(1 - v / min, 0, 1) * levels);
                        codes[p * k + j] = (byte)code;
                    }
                }

                return (codes, Halves(minima));
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(precision));
        }
    }

    private static float[] DecodeValues(byte[] bytes, byte[] scales, int positions, int k, SignalPrecision precision)
    {
        var count = positions * k;
        var values = new float[count];
        switch (precision)
        {
            case SignalPrecision.Fp32:
                Require(bytes, count * 4L);
                for (var i = 0; i < count; i++)
                    values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(4 * i));
                return values;
            case SignalPrecision.Fp16:
                Require(bytes, count * 2L);
                return FromHalves(bytes);
            case SignalPrecision.Bf16:
                Require(bytes, count * 2L);
                for (var i = 0; i < count; i++)
                    values[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(2 * i)) << 16);
                return values;
            case SignalPrecision.Q8:
            {
                Require(bytes, count);
                var minima = Scales(scales, positions);
                for (var i = 0; i < count; i++)
                    values[i] = minima[i / k] * (1 - bytes[i] / 255f);
                return values;
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(precision));
        }
    }

    private static float[] Scales(byte[] scales, int positions)
    {
        var decoded = FromHalves(scales);
        return decoded.Length == positions ? decoded : throw new ArgumentException($"expected {positions} value scales, got {decoded.Length}");
    }

    private static void Require(byte[] bytes, long length)
    {
        if (bytes.LongLength != length)
            throw new ArgumentException($"packed values hold {bytes.Length} bytes, expected {length}");
    }

    private static byte[] Halves(float[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (var i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(2 * i), (Half)values[i]);
        return bytes;
    }

    private static float[] FromHalves(byte[] bytes)
    {
        var values = new float[bytes.Length / 2];
        for (var i = 0; i < values.Length; i++)
            values[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes.AsSpan(2 * i));
        return values;
    }

    /// <summary>float32 → bfloat16 with round-to-nearest-even.</summary>
    private static ushort ToBFloat16(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
            return 0x7FC0;
        var rounding = 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
