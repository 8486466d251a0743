using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>
/// Mixtral's sparse MoE MLP: a linear router (<c>gate</c>), softmax over experts in float32,
/// top-k, the k weights renormalised to sum to 1, and the weighted sum of the chosen experts.
/// </summary>
public sealed class SparseMoeBlock : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate")]
    private readonly Projection _gate;

    [ComponentName(Name = "experts")]
    private readonly ModuleList<GatedMlp> _experts;

    private readonly int _topK;

    public SparseMoeBlock(long hidden, long intermediate, int experts, int topK, ScalarType dtype, Device device)
        : base(nameof(SparseMoeBlock))
    {
        _topK = topK;
        _gate = new Projection(hidden, experts, false, dtype, device);
        _experts = new ModuleList<GatedMlp>(Enumerable.Range(0, experts)
            .Select(_ => new GatedMlp(hidden, intermediate, false, dtype, device, GatedMlp.MixtralExpertNames)).ToArray());
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var shape = input.shape;
        var tokens = input.reshape(-1, shape[^1]);
        var routerLogits = _gate.forward(tokens);
        var probabilities = routerLogits.to_type(ScalarType.Float32).softmax(-1);
        var (weights, chosen) = probabilities.topk(_topK, dim: -1);
        weights = (weights / weights.sum(-1, keepdim: true)).to_type(input.dtype);

        var output = torch.zeros_like(tokens);
        for (var e = 0; e < _experts.Count; e++)
        {
            var hits = chosen.eq(e).nonzero();
            if (hits.shape[0] == 0)
                continue;
            var rows = hits.select(1, 0);
            var slots = hits.select(1, 1);
            var routed = _experts[e].forward(tokens.index_select(0, rows));
            var weight = weights.index([rows, slots]).unsqueeze(-1);
            output = output.index_add(0, rows, routed * weight, 1);
        }

        return output.reshape(shape).MoveToOuterDisposeScope();
    }
}
