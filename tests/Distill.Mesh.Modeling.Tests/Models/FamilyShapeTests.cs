using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Models;

/// <summary>
/// Full state-dict name/shape lists of real-size models, built on the meta device (no weights
/// allocated). The expected lists are written out from each architecture as HF transformers defines
/// it (the module trees of modeling_qwen3.py, modeling_qwen3_moe.py and modeling_qwen2_moe.py) and
/// the model's Hub config.json (copied under configs/models), not derived from our modules; the
/// parameter counts are checked against the model cards' published totals.
/// </summary>
public class FamilyShapeTests
{
    private static (string Name, long[] Shape) P(string name, params long[] shape) => (name, shape);

    private static List<string> Lines(IEnumerable<(string Name, long[] Shape)> parameters) =>
        parameters.Select(p => $"{p.Name} [{string.Join(", ", p.Shape)}]").Order(StringComparer.Ordinal).ToList();

    /// <summary>The whole list: embeddings, final norm (and head), then <paramref name="layer"/>'s entries under model.layers.i.</summary>
    private static List<string> Expected(int layers, long vocab, long hidden, bool tied, Func<int, IEnumerable<(string Name, long[] Shape)>> layer)
    {
        var all = new List<(string, long[])> { P("model.embed_tokens.weight", vocab, hidden), P("model.norm.weight", hidden) };
        if (!tied)
            all.Add(P("lm_head.weight", vocab, hidden));
        for (var i = 0; i < layers; i++)
            all.AddRange(layer(i).Select(p => ($"model.layers.{i}.{p.Name}", p.Shape)));
        return Lines(all);
    }

    private static IEnumerable<(string, long[])> Mlp(string prefix, long hidden, long intermediate) =>
        [P($"{prefix}gate_proj.weight", intermediate, hidden), P($"{prefix}up_proj.weight", intermediate, hidden), P($"{prefix}down_proj.weight", hidden, intermediate)];

    private static CausalLanguageModel OnMeta(string configFile) =>
        new(ModelConfigs.Load(TinyModels.ConfigPath(configFile)), ScalarType.BFloat16, torch.device("meta"));

    [Fact]
    public void Qwen3_0_6B_OnMeta_MatchesTheArchitecturesNameAndShapeList()
    {
        using var model = OnMeta("qwen3-0.6b.json");

        // Qwen/Qwen3-0.6B: 28 layers, hidden 1024, 16 query and 8 kv heads of head_dim 128 (so q_proj
        // is 2048 wide, twice hidden), q_norm / k_norm of head_dim, intermediate 3072, no biases, tied head.
        var expected = Expected(28, 151936, 1024, tied: true, _ =>
        [
            P("input_layernorm.weight", 1024), P("post_attention_layernorm.weight", 1024),
            P("self_attn.q_proj.weight", 2048, 1024), P("self_attn.k_proj.weight", 1024, 1024),
            P("self_attn.v_proj.weight", 1024, 1024), P("self_attn.o_proj.weight", 1024, 2048),
            P("self_attn.q_norm.weight", 128), P("self_attn.k_norm.weight", 128),
            .. Mlp("mlp.", 1024, 3072),
        ]);

        Assert.Equal(expected, Lines(model.ParameterShapes()));
        // Model card: 0.6B parameters, 0.44B of them outside the embedding (151936 × 1024 = 155,582,464).
        Assert.Equal(596_049_920, model.ParameterCount());
        Assert.Equal(440_466_432 + 1024, model.ParameterCount() - 151936L * 1024);
    }

    [Fact]
    public void Qwen3_30B_A3B_OnMeta_MatchesTheArchitecturesNameAndShapeList()
    {
        using var model = OnMeta("qwen3-30b-a3b.json");

        // Qwen/Qwen3-30B-A3B: 48 layers, all sparse (decoder_sparse_step 1, no mlp_only_layers), each
        // with a 128-way router mlp.gate and 128 experts of moe_intermediate_size 768; 32 query and 4 kv
        // heads of head_dim 128; untied head.
        var expected = Expected(48, 151936, 2048, tied: false, _ =>
        [
            P("input_layernorm.weight", 2048), P("post_attention_layernorm.weight", 2048),
            P("self_attn.q_proj.weight", 4096, 2048), P("self_attn.k_proj.weight", 512, 2048),
            P("self_attn.v_proj.weight", 512, 2048), P("self_attn.o_proj.weight", 2048, 4096),
            P("self_attn.q_norm.weight", 128), P("self_attn.k_norm.weight", 128),
            P("mlp.gate.weight", 128, 2048),
            .. Enumerable.Range(0, 128).SelectMany(e => Mlp($"mlp.experts.{e}.", 2048, 768)),
        ]);

        Assert.Equal(expected, Lines(model.ParameterShapes()));
        // Model card: 30.5B total, 29.9B non-embedding.
        Assert.Equal(30_532_122_624, model.ParameterCount());
        Assert.Equal(29_909_792_768, model.ParameterCount() - 2 * 151936L * 2048);
    }

    [Fact]
    public void Qwen15_MoE_A2_7B_OnMeta_MatchesTheArchitecturesNameAndShapeList()
    {
        using var model = OnMeta("qwen1.5-moe-a2.7b.json");

        // Qwen/Qwen1.5-MoE-A2.7B: 24 sparse layers, 16 heads (kv 16) of 128 with q/k/v biases, a
        // 60-way router, 60 experts of 1408, a shared expert of 5632 and its 1-wide sigmoid gate.
        var expected = Expected(24, 151936, 2048, tied: false, _ =>
        [
            P("input_layernorm.weight", 2048), P("post_attention_layernorm.weight", 2048),
            P("self_attn.q_proj.weight", 2048, 2048), P("self_attn.q_proj.bias", 2048),
            P("self_attn.k_proj.weight", 2048, 2048), P("self_attn.k_proj.bias", 2048),
            P("self_attn.v_proj.weight", 2048, 2048), P("self_attn.v_proj.bias", 2048),
            P("self_attn.o_proj.weight", 2048, 2048),
            P("mlp.gate.weight", 60, 2048), P("mlp.shared_expert_gate.weight", 1, 2048),
            .. Mlp("mlp.shared_expert.", 2048, 5632),
            .. Enumerable.Range(0, 60).SelectMany(e => Mlp($"mlp.experts.{e}.", 2048, 1408)),
        ]);

        Assert.Equal(expected, Lines(model.ParameterShapes()));
        // Model card: 14.3B parameters in total.
        Assert.Equal(14_315_784_192, model.ParameterCount());
    }

    [Fact]
    public void Phi3_Mini_4K_OnMeta_MatchesTheArchitecturesNameAndShapeList()
    {
        using var model = OnMeta("phi-3-mini-4k.json");

        // microsoft/Phi-3-mini-4k-instruct: 32 layers, hidden 3072, 32 heads (kv 32) of 96 fused into
        // qkv_proj [3·3072, 3072], gate and up fused into gate_up_proj [2·8192, 3072], no biases, untied head.
        var expected = Expected(32, 32064, 3072, tied: false, _ =>
        [
            P("input_layernorm.weight", 3072), P("post_attention_layernorm.weight", 3072),
            P("self_attn.qkv_proj.weight", 9216, 3072), P("self_attn.o_proj.weight", 3072, 3072),
            P("mlp.gate_up_proj.weight", 16384, 3072), P("mlp.down_proj.weight", 3072, 8192),
        ]);

        Assert.Equal(expected, Lines(model.ParameterShapes()));
        // Model card: 3.8B parameters.
        Assert.Equal(3_821_079_552, model.ParameterCount());
    }

    [Fact]
    public void Gemma3_1B_OnMeta_MatchesTheArchitecturesNameAndShapeList()
    {
        using var model = OnMeta("gemma-3-1b.json");

        // google/gemma-3-1b-pt (gemma3_text): 26 layers, hidden 1152, 4 query heads and 1 kv head of
        // head_dim 256, q_norm / k_norm, four norms per layer (input, post-attention, pre- and
        // post-feed-forward), intermediate 6912, tied head (HF's default for this config).
        var expected = Expected(26, 262144, 1152, tied: true, _ =>
        [
            P("input_layernorm.weight", 1152), P("post_attention_layernorm.weight", 1152),
            P("pre_feedforward_layernorm.weight", 1152), P("post_feedforward_layernorm.weight", 1152),
            P("self_attn.q_proj.weight", 1024, 1152), P("self_attn.k_proj.weight", 256, 1152),
            P("self_attn.v_proj.weight", 256, 1152), P("self_attn.o_proj.weight", 1152, 1024),
            P("self_attn.q_norm.weight", 256), P("self_attn.k_norm.weight", 256),
            .. Mlp("mlp.", 1152, 6912),
        ]);

        Assert.Equal(expected, Lines(model.ParameterShapes()));
        // Model card: 1B parameters (999,885,952).
        Assert.Equal(999_885_952, model.ParameterCount());
        // Every 6th layer is global with rope_theta 10^6; the others slide over 512 with base 10^4.
        Assert.Equal(new int?[] { 512, 512, 512, 512, 512, null }, Enumerable.Range(0, 6).Select(model.Config.SlidingWindowOf));
        Assert.Equal(new double?[] { 10_000, 10_000, 10_000, 10_000, 10_000, null }, Enumerable.Range(0, 6).Select(model.Config.LocalRopeTheta));
    }

    [Fact]
    public void Gemma2_2B_OnMeta_MatchesTheArchitecturesNameAndShapeList()
    {
        using var model = OnMeta("gemma-2-2b.json");

        // google/gemma-2-2b: 26 layers, hidden 2304, 8 query and 4 kv heads of head_dim 256, four
        // norms per layer, intermediate 9216, no q/k norms, tied head.
        var expected = Expected(26, 256000, 2304, tied: true, _ =>
        [
            P("input_layernorm.weight", 2304), P("post_attention_layernorm.weight", 2304),
            P("pre_feedforward_layernorm.weight", 2304), P("post_feedforward_layernorm.weight", 2304),
            P("self_attn.q_proj.weight", 2048, 2304), P("self_attn.k_proj.weight", 1024, 2304),
            P("self_attn.v_proj.weight", 1024, 2304), P("self_attn.o_proj.weight", 2304, 2048),
            .. Mlp("mlp.", 2304, 9216),
        ]);

        Assert.Equal(expected, Lines(model.ParameterShapes()));
        // Model card: 2.6B parameters (2,614,341,888).
        Assert.Equal(2_614_341_888, model.ParameterCount());
        // Even layers slide over 4096 tokens; scores capped at 50, logits at 30.
        Assert.Equal(new int?[] { 4096, null, 4096, null }, Enumerable.Range(0, 4).Select(model.Config.SlidingWindowOf));
        Assert.Equal((50.0, 30.0), (model.Config.AttentionSoftcap, model.Config.FinalLogitSoftcap));
    }
}
