namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>A tokenizer file is malformed or uses a feature this project does not implement.</summary>
public sealed class TokenizerFormatException(string message, Exception? inner = null) : Exception(message, inner);
