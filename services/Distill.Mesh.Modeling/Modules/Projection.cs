using Distill.Mesh.Modeling.Adapters;
using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>
/// A linear projection <c>y = x·Wᵀ + b</c> with HF's parameter names (<c>weight</c> [out, in],
/// <c>bias</c>), which can carry a LoRA adapter whose <c>lora_A</c> / <c>lora_B</c> weights appear
/// under this module, as PEFT names them.
/// </summary>
public sealed class Projection : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private readonly Parameter _weight;

    [ComponentName(Name = "bias")]
    private readonly Parameter? _bias;

    public Projection(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype, Device device)
        : base(nameof(Projection))
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        _weight = new Parameter(torch.empty(outFeatures, inFeatures, dtype: dtype, device: device));
        if (hasBias)
            _bias = new Parameter(torch.empty(outFeatures, dtype: dtype, device: device));
        RegisterComponents();
    }

    public long InFeatures { get; }

    public long OutFeatures { get; }

    /// <summary>The weight, [out, in].</summary>
    public Parameter Weight => _weight;

    /// <summary>The bias, [out], if any.</summary>
    public Parameter? Bias => _bias;

    /// <summary>The attached LoRA adapter, if any.</summary>
    public LoraLayer? Lora { get; private set; }

    /// <summary>Attaches an adapter; its weights register as <c>lora_A</c> and <c>lora_B</c>.</summary>
    public void AttachLora(LoraLayer lora)
    {
        if (Lora is not null)
            throw new InvalidOperationException("this projection already has a LoRA adapter");
        if (lora.InFeatures != InFeatures || lora.OutFeatures != OutFeatures)
            throw new ArgumentException($"LoRA shape [{lora.OutFeatures}, {lora.InFeatures}] does not fit projection [{OutFeatures}, {InFeatures}]");
        Lora = lora;
        register_module(LoraLayer.ANames, lora.A);
        register_module(LoraLayer.BNames, lora.B);
    }

    /// <summary>Removes the adapter (taking it out of the weight first if it is merged).</summary>
    public void DetachLora()
    {
        if (Lora is null)
            return;
        if (Lora.Merged)
            Lora.UnmergeFrom(_weight);
        Lora = null;
        // TorchSharp has no unregister: re-registering with an empty module is not possible either,
        // so the children are removed from the internal registry by name.
        _internal_submodules.Remove(LoraLayer.ANames);
        _internal_submodules.Remove(LoraLayer.BNames);
    }

    public override Tensor forward(Tensor input)
    {
        var output = nn.functional.linear(input, _weight, _bias);
        if (Lora is { Merged: false } lora)
        {
            using var delta = lora.Delta(input);
            output.add_(delta);
        }

        return output;
    }
}
