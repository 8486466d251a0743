using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Adapters;

/// <summary>
/// The low-rank update of one linear projection: <c>Δy = (alpha / r) · B·A·dropout(x)</c>, with
/// A [r, in] initialised as PEFT does (Kaiming-uniform) and B [out, r] zero, so a fresh adapter
/// changes nothing.
/// </summary>
public sealed class LoraLayer : LoraUpdate
{
    /// <summary>Module names PEFT uses for the two factors.</summary>
    public const string ANames = "lora_A";

    /// <inheritdoc cref="ANames"/>
    public const string BNames = "lora_B";

    private readonly Dropout? _dropout;

    /// <param name="inFeatures">Input size of the adapted projection.</param>
    /// <param name="outFeatures">Output size of the adapted projection.</param>
    /// <param name="rank">r.</param>
    /// <param name="alpha">lora_alpha.</param>
    /// <param name="dropout">Dropout on the adapter's input while training.</param>
    /// <param name="rsLora">Scale by alpha/√r (rank-stabilised LoRA) instead of alpha/r.</param>
    /// <param name="dtype">Element type of A and B.</param>
    /// <param name="device">Device of A and B.</param>
    public LoraLayer(long inFeatures, long outFeatures, int rank, double alpha, double dropout, bool rsLora, ScalarType dtype, Device device)
        : base(rank, alpha, rsLora)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        A = nn.Linear(inFeatures, rank, hasBias: false, device: device, dtype: dtype);
        B = nn.Linear(rank, outFeatures, hasBias: false, device: device, dtype: dtype);
        using (torch.no_grad())
            B.weight!.zero_();
        if (dropout > 0)
            _dropout = nn.Dropout(dropout);
    }

    public long InFeatures { get; }

    public long OutFeatures { get; }

    /// <summary>A: [r, in].</summary>
    public Linear A { get; }

    /// <summary>B: [out, r].</summary>
    public Linear B { get; }

    /// <summary>The update for input <paramref name="x"/>.</summary>
    public Tensor Delta(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var input = _dropout is not null && A.training ? _dropout.forward(x) : x;
        return (B.forward(A.forward(input)) * Scaling).MoveToOuterDisposeScope();
    }

    protected override ScalarType FactorType => B.weight!.dtype;

    /// <summary>The dense update <c>(alpha / r) · B·A</c>, [out, in], computed in <paramref name="dtype"/>.</summary>
    public override Tensor DeltaWeight(ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var delta = B.weight!.to_type(dtype).matmul(A.weight!.to_type(dtype)) * Scaling;
        return delta.MoveToOuterDisposeScope();
    }
}
