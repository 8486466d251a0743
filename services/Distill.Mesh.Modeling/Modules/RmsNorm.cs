using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>
/// RMSNorm as HF Llama computes it: normalise in float32, cast back, then scale by the weight. With
/// <c>offset</c>, as HF Gemma computes it: normalise and scale by <c>(1 + weight)</c> in float32, then
/// cast back (the weight starts at 0).
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private readonly Parameter _weight;

    private readonly double _eps;
    private readonly bool _offset;

    public RmsNorm(long size, double eps, ScalarType dtype, Device device, bool offset = false)
        : base(nameof(RmsNorm))
    {
        _eps = eps;
        _offset = offset;
        _weight = new Parameter(offset ? torch.zeros(size, dtype: dtype, device: device) : torch.ones(size, dtype: dtype, device: device));
        RegisterComponents();
    }

    public Parameter Weight => _weight;

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var x = input.to_type(ScalarType.Float32);
        var variance = x.pow(2).mean([-1L], keepdim: true);
        var normed = x * torch.rsqrt(variance + _eps);
        if (_offset)
            return (normed * (_weight.to_type(ScalarType.Float32) + 1)).to_type(input.dtype).MoveToOuterDisposeScope();
        return (_weight * normed.to_type(input.dtype)).MoveToOuterDisposeScope();
    }
}
