namespace Distill.Mesh.Training.Teachers;

/// <summary>How a packed signal stores its values.</summary>
public enum SignalPrecision
{
    Fp32,
    Fp16,
    Bf16,

    /// <summary>8-bit codes over [position minimum, 0].</summary>
    Q8,
}

/// <summary>
/// A sparse teacher signal packed for the wire and the cache: ids bit-packed at ⌈log₂ V⌉ bits,
/// values at the chosen precision, per-position scales and tail mass as float16.
/// </summary>
public sealed record EncodedSignal(
    bool Sampled,
    int Positions,
    int K,
    int IdBits,
    byte[] Ids,
    SignalPrecision Precision,
    byte[] Values,
    byte[] ValueScales,
    byte[] TailMass,
    byte[] SampledLogProbs)
{
    /// <summary>Bytes of payload (what crosses the network per sequence, headers aside).</summary>
    public long PayloadBytes => Ids.LongLength + Values.LongLength + ValueScales.LongLength + TailMass.LongLength + SampledLogProbs.LongLength;
}
