using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Adapters;

/// <summary>
/// PEFT's LoRA on an embedding table E [vocab, hidden]: <c>lora_embedding_A</c> [r, vocab] and
/// <c>lora_embedding_B</c> [hidden, r] (plain parameters, no <c>.weight</c>), ΔE = scaling·(B·A)ᵀ,
/// so a token's row gains scaling·A[:, id]ᵀ·Bᵀ. A starts at zero and B Gaussian, as PEFT
/// initialises them: a fresh adapter changes nothing. There is no dropout on token ids.
/// </summary>
public sealed class LoraEmbedding : LoraUpdate
{
    /// <summary>Parameter names PEFT uses for the two factors.</summary>
    public const string AName = "lora_embedding_A";

    /// <inheritdoc cref="AName"/>
    public const string BName = "lora_embedding_B";

    public LoraEmbedding(long vocabulary, long hidden, int rank, double alpha, bool rsLora, ScalarType dtype, Device device)
        : base(rank, alpha, rsLora)
    {
        Vocabulary = vocabulary;
        Hidden = hidden;
        A = new Parameter(torch.zeros(rank, vocabulary, dtype: dtype, device: device));
        B = new Parameter(torch.zeros(hidden, rank, dtype: dtype, device: device));
    }

    public long Vocabulary { get; }

    public long Hidden { get; }

    /// <summary>A: [r, vocab].</summary>
    public Parameter A { get; }

    /// <summary>B: [hidden, r].</summary>
    public Parameter B { get; }

    /// <summary>The update of the rows of <paramref name="ids"/>: [..ids, hidden].</summary>
    public Tensor Delta(Tensor ids)
    {
        using var scope = torch.NewDisposeScope();
        var rows = A.t().index_select(0, ids.reshape(-1)).matmul(B.t()) * Scaling;
        return rows.reshape([.. ids.shape, Hidden]).MoveToOuterDisposeScope();
    }

    protected override ScalarType FactorType => B.dtype;

    /// <summary>The dense update scaling·(B·A)ᵀ, [vocab, hidden], computed in <paramref name="dtype"/>.</summary>
    public override Tensor DeltaWeight(ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        return (B.to_type(dtype).matmul(A.to_type(dtype)).t() * Scaling).MoveToOuterDisposeScope();
    }
}
