using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>RMSNorm as HF Llama computes it: normalise in float32, cast back, then scale.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private readonly Parameter _weight;

    private readonly double _eps;

    public RmsNorm(long size, double eps, ScalarType dtype, Device device)
        : base(nameof(RmsNorm))
    {
        _eps = eps;
        _weight = new Parameter(torch.ones(size, dtype: dtype, device: device));
        RegisterComponents();
    }

    public Parameter Weight => _weight;

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var x = input.to_type(ScalarType.Float32);
        var variance = x.pow(2).mean([-1L], keepdim: true);
        var normed = (x * torch.rsqrt(variance + _eps)).to_type(input.dtype);
        return (_weight * normed).MoveToOuterDisposeScope();
    }
}
