namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>Opens whichever tokenizer a model folder (or file) has.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// tokenizer.json (preferred, as HF does) or a SentencePiece tokenizer.model; a file path picks by name.
    /// </summary>
    public static TextTokenizer Load(string path)
    {
        if (File.Exists(path))
            return path.EndsWith(".model", StringComparison.Ordinal) ? SentencePieceModelTokenizer.Load(path) : HfTokenizer.Load(path);
        if (File.Exists(Path.Combine(path, "tokenizer.json")))
            return HfTokenizer.Load(path);
        if (File.Exists(Path.Combine(path, "tokenizer.model")))
            return SentencePieceModelTokenizer.Load(path);
        throw new FileNotFoundException($"{path}: no tokenizer.json or tokenizer.model");
    }
}
