using Distill.Mesh.Modeling.Models;
using static TorchSharp.torch;

namespace Distill.Mesh.Testing;

/// <summary>Small models of each family, built from <c>configs/models/tiny-*.json</c> with seeded weights.</summary>
public static class TinyModels
{
    /// <summary>The families with a tiny config.</summary>
    public static readonly string[] Families = ["llama", "qwen2", "mistral", "mixtral", "qwen3", "qwen2_moe", "qwen3_moe", "phi3", "gemma2", "gemma3_text"];

    /// <summary>Path of a config under <c>configs/models</c>.</summary>
    public static string ConfigPath(string name) => Path.Combine(SharedData.RepositoryRoot, "configs", "models", name);

    /// <summary>The tiny config of a family.</summary>
    public static DecoderConfig Config(string family) => ModelConfigs.Load(ConfigPath($"tiny-{family}.json"));

    /// <summary>A tiny model with N(0, 0.02) weights from <paramref name="seed"/>; weights scaled up so logits vary.</summary>
    public static CausalLanguageModel Create(string family, long seed = 1, ScalarType dtype = ScalarType.Float32, DecoderConfig? config = null)
    {
        config ??= Config(family);
        config.InitializerRange = 0.1;
        var model = new CausalLanguageModel(config, dtype);
        model.InitializeWeights(seed);
        model.eval();
        return model;
    }

    /// <summary>Saves a model with the project's byte-level tokenizer (vocab ≥ 262), as `distill init` does.</summary>
    public static string SaveWithByteTokenizer(CausalLanguageModel model, string folder)
    {
        model.SavePretrained(folder);
        Distill.Mesh.Modeling.Tokenization.ByteTokenizerBuilder.Write(folder);
        return folder;
    }

    /// <summary>Random token ids [batch, length] below the vocabulary size.</summary>
    public static Tensor RandomIds(long batch, long length, long vocab, long seed)
    {
        using var generator = new Generator((ulong)seed);
        return randint(0, vocab, [batch, length], generator: generator);
    }
}
