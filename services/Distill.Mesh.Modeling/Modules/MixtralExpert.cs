using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>One Mixtral expert: the SwiGLU MLP with Mixtral's names (w1 = gate, w3 = up, w2 = down).</summary>
public sealed class MixtralExpert : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "w1")]
    private readonly Projection _w1;

    [ComponentName(Name = "w2")]
    private readonly Projection _w2;

    [ComponentName(Name = "w3")]
    private readonly Projection _w3;

    public MixtralExpert(long hidden, long intermediate, ScalarType dtype, Device device)
        : base(nameof(MixtralExpert))
    {
        _w1 = new Projection(hidden, intermediate, false, dtype, device);
        _w2 = new Projection(intermediate, hidden, false, dtype, device);
        _w3 = new Projection(hidden, intermediate, false, dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var gated = nn.functional.silu(_w1.forward(input)) * _w3.forward(input);
        return _w2.forward(gated).MoveToOuterDisposeScope();
    }
}
