namespace Distill.Mesh.Modeling.Models;

/// <summary>The files of an HF model folder that travel with its weights when a model is rewritten (trained, merged, re-initialised).</summary>
public static class ModelFolderFiles
{
    /// <summary>The tokenizer and its chat template: fast and slow (SentencePiece, GPT-2 BPE) forms.</summary>
    public static readonly IReadOnlyList<string> Tokenizer =
        ["tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json"];

    /// <summary>The generation defaults (EOS ids, sampling settings).</summary>
    public const string GenerationConfig = "generation_config.json";

    /// <summary>Every companion file: <see cref="Tokenizer"/> and <see cref="GenerationConfig"/>.</summary>
    public static IEnumerable<string> All => Tokenizer.Append(GenerationConfig);

    /// <summary>Copies the companion files <paramref name="source"/> has into <paramref name="destination"/>; returns the names copied.</summary>
    public static IReadOnlyList<string> Copy(string source, string destination, IEnumerable<string>? names = null)
    {
        var copied = new List<string>();
        foreach (var name in names ?? All)
        {
            var from = Path.Combine(source, name);
            if (!File.Exists(from))
                continue;
            File.Copy(from, Path.Combine(destination, name), overwrite: true);
            copied.Add(name);
        }

        return copied;
    }
}
