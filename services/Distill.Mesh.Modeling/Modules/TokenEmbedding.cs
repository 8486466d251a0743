using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>The token embedding table (<c>weight</c> [vocab, hidden]).</summary>
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

    public override Tensor forward(Tensor ids)
    {
        using var scope = torch.NewDisposeScope();
        var rows = _weight.index_select(0, ids.reshape(-1));
        return rows.reshape([.. ids.shape, _weight.shape[1]]).MoveToOuterDisposeScope();
    }
}
