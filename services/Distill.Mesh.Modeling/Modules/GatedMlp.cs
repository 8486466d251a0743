using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>SwiGLU MLP <c>down(silu(gate(x)) · up(x))</c> with HF Llama's names.</summary>
public sealed class GatedMlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate_proj")]
    private readonly Projection _gateProj;

    [ComponentName(Name = "up_proj")]
    private readonly Projection _upProj;

    [ComponentName(Name = "down_proj")]
    private readonly Projection _downProj;

    public GatedMlp(long hidden, long intermediate, bool bias, ScalarType dtype, Device device)
        : base(nameof(GatedMlp))
    {
        _gateProj = new Projection(hidden, intermediate, bias, dtype, device);
        _upProj = new Projection(hidden, intermediate, bias, dtype, device);
        _downProj = new Projection(intermediate, hidden, bias, dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var gated = nn.functional.silu(_gateProj.forward(input)) * _upProj.forward(input);
        return _downProj.forward(gated).MoveToOuterDisposeScope();
    }
}
