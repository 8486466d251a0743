using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>
/// Phi-3's SwiGLU MLP with gate and up fused: <c>gate_up_proj</c> [2·intermediate, hidden] whose first
/// half of the output is the gate and second half the up projection; <c>down(silu(gate) · up)</c>.
/// </summary>
public sealed class FusedGatedMlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate_up_proj")]
    private readonly Projection _gateUpProj;

    [ComponentName(Name = "down_proj")]
    private readonly Projection _downProj;

    private readonly long _intermediate;

    public FusedGatedMlp(long hidden, long intermediate, bool bias, ScalarType dtype, Device device)
        : base(nameof(FusedGatedMlp))
    {
        _intermediate = intermediate;
        _gateUpProj = new Projection(hidden, 2 * intermediate, bias, dtype, device);
        _downProj = new Projection(intermediate, hidden, bias, dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var fused = _gateUpProj.forward(input);
        var gated = nn.functional.silu(fused.narrow(-1, 0, _intermediate)) * fused.narrow(-1, _intermediate, _intermediate);
        return _downProj.forward(gated).MoveToOuterDisposeScope();
    }
}
