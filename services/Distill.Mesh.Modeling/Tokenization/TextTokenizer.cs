namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>A tokenizer as the rest of the project uses it: text ↔ ids, special tokens, identity hash.</summary>
public abstract class TextTokenizer
{
    private readonly Lazy<ChatTemplate?> _chatTemplate;

    protected TextTokenizer(TokenizerSettings settings)
    {
        Settings = settings;
        _chatTemplate = new Lazy<ChatTemplate?>(() => ChatTemplate.FromSettings(settings));
    }

    /// <summary>tokenizer_config.json settings.</summary>
    public TokenizerSettings Settings { get; }

    /// <summary>The folder's Jinja chat template, parsed on first use; null when there is none.</summary>
    public ChatTemplate? ChatTemplate => _chatTemplate.Value;

    /// <summary>One more than the largest token id.</summary>
    public abstract int VocabularySize { get; }

    /// <summary>
    /// A stable hash of the id ↔ token mapping (vocabulary, merges, special tokens): equal hashes
    /// mean two models' ids denote the same strings, which logit distillation requires.
    /// </summary>
    public abstract string Hash { get; }

    /// <summary>Encodes text; special tokens written in the text are recognised.</summary>
    /// <param name="text">The text.</param>
    /// <param name="addSpecialTokens">Add BOS/EOS as the tokenizer's post-processor or config says.</param>
    public abstract IReadOnlyList<int> Encode(string text, bool addSpecialTokens = false);

    /// <summary>Decodes ids to text.</summary>
    public abstract string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false);

    /// <summary>The id of a token string (including added tokens), or null.</summary>
    public abstract int? TokenToId(string token);

    /// <summary>The string of a token id, or null.</summary>
    public abstract string? IdToToken(int id);

    /// <summary>Whether an id is a special (control) token.</summary>
    public abstract bool IsSpecial(int id);

    public int? BosTokenId => Settings.BosToken is { } t ? TokenToId(t) : null;

    public int? EosTokenId => Settings.EosToken is { } t ? TokenToId(t) : null;

    public int? PadTokenId => Settings.PadToken is { } t ? TokenToId(t) : null;

    /// <summary>The id of a token that must exist; throws naming it otherwise.</summary>
    public int RequireId(string token) =>
        TokenToId(token) ?? throw new TokenizerFormatException($"token '{token}' is not in the vocabulary");
}
