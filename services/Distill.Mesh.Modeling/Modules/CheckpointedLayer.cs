using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>
/// Activation checkpointing for a decoder layer: the forward pass keeps only the layer's input;
/// the backward pass runs the layer again with gradients on and back-propagates through that
/// recomputation (parameter gradients accumulate as usual). Torch's RNG is replayed so dropout
/// (in LoRA adapters) draws the same masks in both passes. Memory: one layer's activations at a
/// time instead of all layers'; cost: one more forward per layer.
/// </summary>
internal sealed class CheckpointedLayer : autograd.SingleTensorFunction<CheckpointedLayer>
{
    public override string Name => "CheckpointedDecoderLayer";

    private sealed record Call(DecoderLayer Layer, Tensor Cos, Tensor Sin, Tensor? Mask, bool Causal);

    /// <summary>The layer's output, with activations recomputed in backward.</summary>
    public static Tensor Run(DecoderLayer layer, Tensor hidden, Tensor cos, Tensor sin, Tensor? mask, bool causal) =>
        apply(hidden, new Call(layer, cos, sin, mask, causal));

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (hidden, call) = ((Tensor)vars[0], (Call)vars[1]);
        // Tensors needed again in backward go through save_for_backward: autograd keeps them alive
        // after the caller's dispose scope has ended.
        ctx.save_for_backward([hidden, torch.get_rng_state(), call.Cos, call.Sin, call.Mask ?? torch.empty(0)]);
        ctx.save_data("layer", call.Layer);
        ctx.save_data("masked", call.Mask is not null);
        ctx.save_data("causal", call.Causal);
        return call.Layer.Forward(hidden, call.Cos, call.Sin, call.Mask, call.Causal, null);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var layer = (DecoderLayer)ctx.get_data("layer");
        var mask = (bool)ctx.get_data("masked") ? saved[4] : null;
        var resume = torch.get_rng_state();
        torch.set_rng_state(saved[1]);
        try
        {
            using var grad = torch.enable_grad();
            var input = saved[0].detach().requires_grad_();
            var output = layer.Forward(input, saved[2], saved[3], mask, (bool)ctx.get_data("causal"), null);
            output.backward([gradOutput]);
            return [input.grad!, null!];
        }
        finally
        {
            torch.set_rng_state(resume);
        }
    }
}
