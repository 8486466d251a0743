using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Teachers;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Tests.Teachers;

public class SignalCodecTests
{
    private static (Tensor Student, Tensor Teacher) Logits(int vocab, long seed, int rows = 6)
    {
        using var g = new Generator((ulong)seed);
        return (torch.randn(rows, vocab, generator: g) * 3, torch.randn(rows, vocab, generator: g) * 3);
    }

    [Theory]
    [InlineData(262)]
    [InlineData(32000)]
    [InlineData(128256)]
    [InlineData(151936)]
    public void Ids_RoundTripExactly_AtCeilLog2VBits(int vocab)
    {
        var (_, teacher) = Logits(vocab, 1);
        var signal = TopKTeacherSignal.FromLogits(teacher, 64, 1.0, TopKMode.Tail);

        var encoded = SignalCodec.Encode(signal, SignalPrecision.Fp32, vocab);
        var decoded = (TopKTeacherSignal)SignalCodec.Decode(encoded);

        Assert.Equal((int)Math.Ceiling(Math.Log2(vocab)), encoded.IdBits);
        Assert.Equal((6 * 64 * encoded.IdBits + 7) / 8, encoded.Ids.Length);
        TensorAssert.Equal(signal.Ids, decoded.Ids);
        TensorAssert.Equal(signal.LogProbs, decoded.LogProbs);
    }

    [Theory]
    [InlineData(SignalPrecision.Fp32, 1e-6)]
    [InlineData(SignalPrecision.Fp16, 2e-3)]
    [InlineData(SignalPrecision.Bf16, 1e-2)]
    [InlineData(SignalPrecision.Q8, 1e-2)]
    public void Decoded_LossIsCloseToTheUnpackedSignals(SignalPrecision precision, double tolerance)
    {
        var (student, teacher) = Logits(500, 2, rows: 32);
        var exact = TopKTeacherSignal.FromLogits(teacher, 64, 1.0, TopKMode.Tail);
        var options = new DistillationLossOptions { Kind = DivergenceKind.ForwardKl };

        var decoded = SignalCodec.Decode(SignalCodec.Encode(exact, precision, 500));

        using var reference = DistillationLoss.PerPosition(student, exact, options);
        using var approximate = DistillationLoss.PerPosition(student, decoded, options);
        TensorAssert.Close(reference, approximate, atol: tolerance, rtol: 0.02);
    }

    [Fact]
    public void Q8AtK64_IsUnder150BytesPerToken_ForTheByteLevelVocabulary()
    {
        var (_, teacher) = Logits(262, 3, rows: 100);

        var encoded = SignalCodec.Encode(TopKTeacherSignal.FromLogits(teacher, 64, 1.0, TopKMode.Tail), SignalPrecision.Q8, 262);

        // 64 ids × 9 bits = 72 B, 64 codes = 64 B, scale 2 B, tail 2 B.
        Assert.Equal(140.0, (double)encoded.PayloadBytes / 100, 6);
    }

    [Fact]
    public void Sampled_RoundTripsIdsWeightsAndLogProbs()
    {
        var (_, teacher) = Logits(1000, 4);
        using var generator = new Generator(5);
        var signal = SampledTeacherSignal.FromLogits(teacher, 12, 1.0, generator);

        var decoded = (SampledTeacherSignal)SignalCodec.Decode(SignalCodec.Encode(signal, SignalPrecision.Fp32, 1000));

        TensorAssert.Equal(signal.Ids, decoded.Ids);
        TensorAssert.Close(signal.Weights, decoded.Weights, atol: 1e-7);
        TensorAssert.Close(signal.LogProbs, decoded.LogProbs, atol: 1e-6);
    }

    [Fact]
    public void Decode_TruncatedPayload_IsRejected()
    {
        var (_, teacher) = Logits(262, 6);
        var encoded = SignalCodec.Encode(TopKTeacherSignal.FromLogits(teacher, 8, 1.0, TopKMode.Tail), SignalPrecision.Q8, 262);

        Assert.Throws<ArgumentException>(() => SignalCodec.Decode(encoded with { Values = encoded.Values[..^1] }));
        Assert.Throws<ArgumentException>(() => SignalCodec.Decode(encoded with { Ids = encoded.Ids[..^2] }));
    }
}
