using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>
/// Gated MLP <c>down(act(gate(x)) · up(x))</c>: SwiGLU (silu) or Gemma's GeGLU (tanh-approximated
/// gelu). The projections' names differ by family, so
/// they are registered under names given at construction: Llama's <c>gate_proj/up_proj/down_proj</c>
/// or a Mixtral expert's <c>w1/w3/w2</c>.
/// </summary>
public sealed class GatedMlp : nn.Module<Tensor, Tensor>
{
    /// <summary>HF Llama/Qwen2/Mistral names.</summary>
    public static readonly (string Gate, string Up, string Down) LlamaNames = ("gate_proj", "up_proj", "down_proj");

    /// <summary>Mixtral expert names (w1 = gate, w3 = up, w2 = down).</summary>
    public static readonly (string Gate, string Up, string Down) MixtralExpertNames = ("w1", "w3", "w2");

    // Kept in an array, not in Module-typed fields: TorchSharp's named_modules() also lists such
    // fields under their C# names, which would expose each projection twice.
    private readonly Projection[] _gateUpDown;
    private readonly bool _gelu;

    // activation: HF's hidden_act, silu (the default) or gelu_pytorch_tanh.
    public GatedMlp(long hidden, long intermediate, bool bias, ScalarType dtype, Device device, (string Gate, string Up, string Down) names, string activation = "silu")
        : base(nameof(GatedMlp))
    {
        _gelu = activation == "gelu_pytorch_tanh";
        _gateUpDown =
        [
            new Projection(hidden, intermediate, bias, dtype, device),
            new Projection(hidden, intermediate, bias, dtype, device),
            new Projection(intermediate, hidden, bias, dtype, device),
        ];
        register_module(names.Gate, _gateUpDown[0]);
        register_module(names.Up, _gateUpDown[1]);
        register_module(names.Down, _gateUpDown[2]);
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var gate = _gateUpDown[0].forward(input);
        var activated = _gelu ? nn.functional.gelu(gate, TorchSharp.Modules.GELU.Approximate.tanh, false) : nn.functional.silu(gate);
        var gated = activated * _gateUpDown[1].forward(input);
        return _gateUpDown[2].forward(gated).MoveToOuterDisposeScope();
    }
}
