using Distill.Mesh.Modeling.Models;
using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>
/// The sparse MoE MLP of Mixtral and Qwen-MoE: a linear router (<c>gate</c>), softmax over experts
/// in float32, top-k, the k weights renormalised to sum to 1 (Mixtral; Qwen-MoE only with
/// <c>norm_topk_prob</c>), and the weighted sum of the chosen experts. Qwen2-MoE adds an always-on
/// <c>shared_expert</c> scaled by <c>sigmoid(shared_expert_gate(x))</c>.
/// </summary>
public sealed class SparseMoeBlock : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate")]
    private readonly Projection _gate;

    [ComponentName(Name = "experts")]
    private readonly ModuleList<GatedMlp> _experts;

    [ComponentName(Name = "shared_expert")]
    private readonly GatedMlp? _sharedExpert;

    [ComponentName(Name = "shared_expert_gate")]
    private readonly Projection? _sharedExpertGate;

    private readonly int _topK;
    private readonly bool _normalizeTopK;

    public SparseMoeBlock(DecoderConfig config, ScalarType dtype, Device device)
        : base(nameof(SparseMoeBlock))
    {
        _topK = config.ExpertsPerToken;
        _normalizeTopK = config.NormalizeTopK;
        var names = config.ExpertsUnderMlp ? GatedMlp.LlamaNames : GatedMlp.MixtralExpertNames;
        _gate = new Projection(config.HiddenSize, config.ExpertCount, false, dtype, device);
        _experts = new ModuleList<GatedMlp>(Enumerable.Range(0, config.ExpertCount)
            .Select(_ => new GatedMlp(config.HiddenSize, config.ExpertIntermediateSize, false, dtype, device, names)).ToArray());
        if (config.SharedExpertIntermediateSize > 0)
        {
            _sharedExpert = new GatedMlp(config.HiddenSize, config.SharedExpertIntermediateSize, false, dtype, device, GatedMlp.LlamaNames);
            _sharedExpertGate = new Projection(config.HiddenSize, 1, false, dtype, device);
        }

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
        if (_normalizeTopK)
            weights = weights / weights.sum(-1, keepdim: true);
        weights = weights.to_type(input.dtype);

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

        if (_sharedExpert is not null)
            output = output + nn.functional.sigmoid(_sharedExpertGate!.forward(tokens)) * _sharedExpert.forward(tokens);
        return output.reshape(shape).MoveToOuterDisposeScope();
    }
}
