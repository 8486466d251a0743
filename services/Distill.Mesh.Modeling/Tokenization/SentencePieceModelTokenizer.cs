using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>
/// A SentencePiece <c>tokenizer.model</c> (Llama 2 style BPE with byte fallback), read with
/// Microsoft.ML.Tokenizers. With special tokens added, BOS is prepended even to empty text, as HF does.
/// </summary>
public sealed class SentencePieceModelTokenizer : TextTokenizer
{
    private readonly LlamaTokenizer _tokenizer;
    private readonly Dictionary<int, string> _idToToken;
    private readonly Lazy<string> _hash;

    private SentencePieceModelTokenizer(LlamaTokenizer tokenizer, TokenizerSettings settings)
        : base(settings with
        {
            BosToken = settings.BosToken ?? "<s>",
            EosToken = settings.EosToken ?? "</s>",
            UnknownToken = settings.UnknownToken ?? "<unk>",
        })
    {
        _tokenizer = tokenizer;
        _idToToken = tokenizer.Vocabulary.ToDictionary(kv => kv.Value, kv => kv.Key);
        _hash = new Lazy<string>(ComputeHash);
    }

    /// <summary>Loads <c>tokenizer.model</c> from a folder or file.</summary>
    public static SentencePieceModelTokenizer Load(string path)
    {
        var file = Directory.Exists(path) ? Path.Combine(path, "tokenizer.model") : path;
        if (!File.Exists(file))
            throw new FileNotFoundException($"no tokenizer.model at '{file}'");
        try
        {
            using var stream = File.OpenRead(file);
            var tokenizer = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false);
            return new SentencePieceModelTokenizer(tokenizer, TokenizerSettings.Load(Path.GetDirectoryName(Path.GetFullPath(file))!));
        }
        catch (Exception e) when (e is not FileNotFoundException and not TokenizerFormatException)
        {
            throw new TokenizerFormatException($"{file}: not a readable SentencePiece model ({e.Message})", e);
        }
    }

    public override int VocabularySize => _idToToken.Keys.Max() + 1;

    public override string Hash => _hash.Value;

    public override IReadOnlyList<int> Encode(string text, bool addSpecialTokens = false)
    {
        var ids = new List<int>();
        if (addSpecialTokens && Settings.AddBosToken != false)
            ids.Add(_tokenizer.BeginningOfSentenceId);
        if (text.Length > 0)
            ids.AddRange(_tokenizer.EncodeToIds(text));
        if (addSpecialTokens && Settings.AddEosToken == true)
            ids.Add(_tokenizer.EndOfSentenceId);
        return ids;
    }

    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false) =>
        _tokenizer.Decode(skipSpecialTokens ? ids.Where(id => !IsSpecial(id)) : ids) ?? "";

    public override int? TokenToId(string token) => _tokenizer.Vocabulary.TryGetValue(token, out var id) ? id : null;

    public override string? IdToToken(int id) => _idToToken.GetValueOrDefault(id);

    public override bool IsSpecial(int id) =>
        id == _tokenizer.BeginningOfSentenceId || id == _tokenizer.EndOfSentenceId || id == _tokenizer.UnknownId;

    private string ComputeHash()
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData("distill-tokenizer-v1 sentencepiece\n"u8);
        foreach (var (id, token) in _idToToken.OrderBy(kv => kv.Key))
            sha.AppendData(Encoding.UTF8.GetBytes($"{id}\t{JsonSerializer.Serialize(token)}\n"));
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
