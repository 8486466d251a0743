using Distill.Mesh.Modeling.Adapters;
using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>
/// The token embedding table (<c>weight</c> [vocab, hidden]), which can carry a PEFT embedding
/// LoRA whose <c>lora_embedding_A</c> / <c>lora_embedding_B</c> appear under this module.
/// </summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private readonly Parameter _weight;

    public TokenEmbedding(long vocab, long hidden, ScalarType dtype, Device device)
        : base(nameof(TokenEmbedding))
    {
        _weight = new Parameter(torch.empty(vocab, hidden, dtype: dtype, device: device));
        RegisterComponents();
    }

    public Parameter Weight => _weight;

    /// <summary>The attached LoRA adapter, if any.</summary>
    public LoraEmbedding? Lora { get; private set; }

    /// <summary>Attaches an adapter; its factors register as <c>lora_embedding_A</c> and <c>lora_embedding_B</c>.</summary>
    public void AttachLora(LoraEmbedding lora)
    {
        if (Lora is not null)
            throw new InvalidOperationException("this embedding already has a LoRA adapter");
        if (lora.Vocabulary != _weight.shape[0] || lora.Hidden != _weight.shape[1])
            throw new ArgumentException($"LoRA shape [{lora.Vocabulary}, {lora.Hidden}] does not fit embedding [{_weight.shape[0]}, {_weight.shape[1]}]");
        Lora = lora;
        register_parameter(LoraEmbedding.AName, lora.A);
        register_parameter(LoraEmbedding.BName, lora.B);
    }

    /// <summary>Removes the adapter (taking it out of the table first if it is merged).</summary>
    public void DetachLora()
    {
        if (Lora is null)
            return;
        if (Lora.Merged)
            Lora.UnmergeFrom(_weight);
        Lora = null;
        _internal_params.Remove(LoraEmbedding.AName);
        _internal_params.Remove(LoraEmbedding.BName);
    }

    public override Tensor forward(Tensor ids)
    {
        using var scope = torch.NewDisposeScope();
        var rows = _weight.index_select(0, ids.reshape(-1)).reshape([.. ids.shape, _weight.shape[1]]);
        if (Lora is { Merged: false } lora)
            rows = rows + lora.Delta(ids).to_type(rows.dtype);
        return rows.MoveToOuterDisposeScope();
    }
}
