using Distill.Mesh.Modeling.Models;
using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>
/// Pre-norm transformer block: attention and MLP (dense or sparse MoE), each with a residual; Gemma
/// adds post-attention and pre/post-feed-forward norms around the sub-blocks.
/// </summary>
public sealed class DecoderLayer : nn.Module
{
    [ComponentName(Name = "input_layernorm")]
    private readonly RmsNorm _inputLayernorm;

    [ComponentName(Name = "self_attn")]
    private readonly Attention _selfAttn;

    [ComponentName(Name = "post_attention_layernorm")]
    private readonly RmsNorm _postAttentionLayernorm;

    [ComponentName(Name = "pre_feedforward_layernorm")]
    private readonly RmsNorm? _preFeedforwardLayernorm;

    [ComponentName(Name = "post_feedforward_layernorm")]
    private readonly RmsNorm? _postFeedforwardLayernorm;

    /// <summary>The dense MLP, or Qwen-MoE's sparse block (which HF names <c>mlp</c> too).</summary>
    [ComponentName(Name = "mlp")]
    private readonly nn.Module<Tensor, Tensor>? _mlp;

    [ComponentName(Name = "block_sparse_moe")]
    private readonly SparseMoeBlock? _blockSparseMoe;

    public DecoderLayer(DecoderConfig config, int layer, ScalarType dtype, Device device)
        : base(nameof(DecoderLayer))
    {
        RmsNorm Norm() => new(config.HiddenSize, config.RmsNormEps, dtype, device, config.OffsetNorms);
        _inputLayernorm = Norm();
        _selfAttn = new Attention(config, layer, dtype, device);
        _postAttentionLayernorm = Norm();
        if (config.SandwichNorms)
            (_preFeedforwardLayernorm, _postFeedforwardLayernorm) = (Norm(), Norm());
        if (config.FusedProjections)
            _mlp = new FusedGatedMlp(config.HiddenSize, config.IntermediateSize, config.MlpBias, dtype, device);
        else if (!config.IsSparseLayer(layer))
            _mlp = new GatedMlp(config.HiddenSize, config.IntermediateSize, config.MlpBias, dtype, device, GatedMlp.LlamaNames, config.Activation);
        else if (config.ExpertsUnderMlp)
            _mlp = new SparseMoeBlock(config, dtype, device);
        else
            _blockSparseMoe = new SparseMoeBlock(config, dtype, device);
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor? mask, bool causal, KvCache? cache)
    {
        using var scope = torch.NewDisposeScope();
        var attended = _selfAttn.Forward(_inputLayernorm.forward(hidden), cos, sin, mask, causal, cache);
        if (_preFeedforwardLayernorm is not null)
        {
            // Gemma: each sub-block's output is normalised before its residual add.
            var afterAttention = hidden + _postAttentionLayernorm.forward(attended);
            var fed = _mlp!.forward(_preFeedforwardLayernorm.forward(afterAttention));
            return (afterAttention + _postFeedforwardLayernorm!.forward(fed)).MoveToOuterDisposeScope();
        }

        var residual = hidden + attended;
        var normed = _postAttentionLayernorm.forward(residual);
        var mlp = _mlp is not null ? _mlp.forward(normed) : _blockSparseMoe!.forward(normed);
        return (residual + mlp).MoveToOuterDisposeScope();
    }
}
