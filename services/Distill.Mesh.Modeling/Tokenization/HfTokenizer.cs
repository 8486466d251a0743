using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> BPE tokenizer: byte-level (GPT-2, Llama 3, Qwen2/3) or
/// SentencePiece-style with byte fallback (Mistral, Llama 2). Added tokens split the text first;
/// each remaining segment is normalized, pre-tokenized and BPE-encoded.
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers' BpeTokenizer has no reader for tokenizer.json, no byte fallback and no
/// <c>ignore_merges</c>, so the BPE model here is ours; that library is used for SentencePiece
/// <c>tokenizer.model</c> files (<see cref="SentencePieceModelTokenizer"/>) and as a test oracle.
/// </remarks>
public sealed class HfTokenizer : TextTokenizer
{
    private readonly BpeModel _model;
    private readonly Func<string, string> _normalize;
    private readonly Func<List<string>, List<string>> _preTokenize;
    private readonly Func<List<string>, List<string>> _decode;
    private readonly Dictionary<string, AddedToken> _added;
    private readonly Dictionary<int, AddedToken> _addedById;
    private readonly Regex? _addedPattern;
    private readonly string[] _idToToken;
    private readonly int[] _prefix;
    private readonly int[] _suffix;
    private readonly Lazy<string> _hash;

    private HfTokenizer(JsonObject root, TokenizerSettings settings, string source)
        : base(settings)
    {
        var model = root["model"] as JsonObject ?? throw new TokenizerFormatException($"{source}: no 'model'");
        var type = model["type"]?.GetValue<string>() ?? "BPE";
        if (type != "BPE")
            throw new TokenizerFormatException($"{source}: model type '{type}' is not supported (supported: BPE)");
        _model = ReadModel(model, source);
        _normalize = Normalizers.Parse(root["normalizer"]);
        _preTokenize = PreTokenizers.Parse(root["pre_tokenizer"]);
        _decode = Decoders.Parse(root["decoder"]);

        _added = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        foreach (var node in root["added_tokens"]?.AsArray() ?? [])
        {
            var token = new AddedToken(node!["id"]!.GetValue<int>(), node["content"]!.GetValue<string>(),
                node["special"]?.GetValue<bool>() ?? false, node["lstrip"]?.GetValue<bool>() ?? false, node["rstrip"]?.GetValue<bool>() ?? false);
            _added[token.Content] = token;
        }

        _addedById = _added.Values.ToDictionary(t => t.Id);
        _addedPattern = _added.Count == 0 ? null : new Regex(
            string.Join("|", _added.Values.OrderByDescending(t => t.Content.Length).ThenBy(t => t.Id)
                .Select(t => $"(?<t{t.Id}>{(t.LStrip ? @"\s*" : "")}{Regex.Escape(t.Content)}{(t.RStrip ? @"\s*" : "")})")),
            RegexOptions.Compiled | RegexOptions.CultureInvariant);

        var size = Math.Max(_model.Vocabulary.Values.DefaultIfEmpty(-1).Max(), _addedById.Keys.DefaultIfEmpty(-1).Max()) + 1;
        _idToToken = new string[size];
        foreach (var (token, id) in _model.Vocabulary)
            _idToToken[id] = token;
        foreach (var token in _added.Values)
            _idToToken[token.Id] = token.Content;

        (_prefix, _suffix) = SpecialTokenFrame(root["post_processor"], settings, source);
        _hash = new Lazy<string>(ComputeHash);
    }

    private sealed record AddedToken(int Id, string Content, bool Special, bool LStrip, bool RStrip);

    /// <summary>The BPE model (vocabulary and merges).</summary>
    public BpeModel Model => _model;

    public override int VocabularySize => _idToToken.Length;

    public override string Hash => _hash.Value;

    /// <summary>Loads <c>tokenizer.json</c> (and <c>tokenizer_config.json</c> beside it) from a folder or file.</summary>
    public static HfTokenizer Load(string path)
    {
        var file = Directory.Exists(path) ? Path.Combine(path, "tokenizer.json") : path;
        if (!File.Exists(file))
            throw new FileNotFoundException($"no tokenizer.json at '{file}'");
        JsonNode? root;
        try
        {
            using var stream = File.OpenRead(file);
            root = JsonNode.Parse(stream);
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException($"{file}: not valid JSON ({e.Message})", e);
        }

        var settings = TokenizerSettings.Load(Path.GetDirectoryName(Path.GetFullPath(file))!);
        try
        {
            return new HfTokenizer(root as JsonObject ?? throw new TokenizerFormatException($"{file}: must be a JSON object"), settings, file);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException or NullReferenceException)
        {
            throw new TokenizerFormatException($"{file}: malformed tokenizer ({e.Message})", e);
        }
        catch (TokenizerFormatException e) when (!e.Message.StartsWith(file, StringComparison.Ordinal))
        {
            throw new TokenizerFormatException($"{file}: {e.Message}", e);
        }
    }

    public override IReadOnlyList<int> Encode(string text, bool addSpecialTokens = false)
    {
        var ids = new List<int>();
        if (addSpecialTokens)
            ids.AddRange(_prefix);
        var position = 0;
        if (_addedPattern is not null)
        {
            foreach (Match match in _addedPattern.Matches(text))
            {
                EncodeSegment(text[position..match.Index], ids);
                ids.Add(AddedIdOf(match));
                position = match.Index + match.Length;
            }
        }

        EncodeSegment(text[position..], ids);
        if (addSpecialTokens)
            ids.AddRange(_suffix);
        return ids;
    }

    private int AddedIdOf(Match match)
    {
        foreach (Group group in match.Groups)
        {
            if (group.Success && group.Name.StartsWith('t') && int.TryParse(group.Name.AsSpan(1), out var id))
                return id;
        }

        throw new InvalidOperationException("added-token match without a token group");
    }

    private void EncodeSegment(string segment, List<int> ids)
    {
        if (segment.Length == 0)
            return;
        foreach (var word in _preTokenize([_normalize(segment)]))
            _model.Encode(word, ids);
    }

    /// <summary>
    /// Decodes as HF does: every token (added tokens as their text) goes through the decoder chain
    /// together, so e.g. a Strip step only affects the very start of the text.
    /// </summary>
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            if (id < 0 || id >= _idToToken.Length || _idToToken[id] is null)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is not in the vocabulary (size {VocabularySize})");
            if (!(skipSpecialTokens && IsSpecial(id)))
                tokens.Add(_idToToken[id]);
        }

        return string.Concat(_decode(tokens));
    }

    public override int? TokenToId(string token) =>
        _added.TryGetValue(token, out var added) ? added.Id
        : _model.Vocabulary.TryGetValue(token, out var id) ? id
        : null;

    public override string? IdToToken(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id] : null;

    public override bool IsSpecial(int id) => _addedById.TryGetValue(id, out var token) && token.Special;

    private static BpeModel ReadModel(JsonObject model, string source)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (token, id) in model["vocab"]?.AsObject() ?? throw new TokenizerFormatException($"{source}: model has no 'vocab'"))
            vocab[token] = id!.GetValue<int>();

        var merges = new List<(string, string)>();
        foreach (var merge in model["merges"]?.AsArray() ?? [])
        {
            // Two formats: "a b" strings (older) and ["a", "b"] pairs (tokenizers ≥ 0.20).
            if (merge is JsonArray pair && pair.Count == 2)
            {
                merges.Add((pair[0]!.GetValue<string>(), pair[1]!.GetValue<string>()));
            }
            else if (merge is JsonValue value && value.TryGetValue<string>(out var text) && text.IndexOf(' ', 1) is var space and > 0)
            {
                merges.Add((text[..space], text[(space + 1)..]));
            }
            else
            {
                throw new TokenizerFormatException($"{source}: malformed merge entry {merge?.ToJsonString()}");
            }
        }

        if (!string.IsNullOrEmpty(model["continuing_subword_prefix"]?.GetValue<string>()) || !string.IsNullOrEmpty(model["end_of_word_suffix"]?.GetValue<string>()))
            throw new TokenizerFormatException($"{source}: continuing_subword_prefix / end_of_word_suffix are not supported");
        if (model["dropout"] is JsonValue dropout && dropout.GetValue<double>() > 0)
            throw new TokenizerFormatException($"{source}: BPE dropout is not supported");

        return new BpeModel(vocab, merges,
            ignoreMerges: model["ignore_merges"]?.GetValue<bool>() ?? false,
            byteFallback: model["byte_fallback"]?.GetValue<bool>() ?? false,
            unknownToken: model["unk_token"]?.GetValue<string>(),
            fuseUnknown: model["fuse_unk"]?.GetValue<bool>() ?? false);
    }

    /// <summary>
    /// The ids a single sequence is framed with when special tokens are added: from a
    /// TemplateProcessing post-processor when there is one, else from add_bos/add_eos in the config.
    /// </summary>
    private (int[] Prefix, int[] Suffix) SpecialTokenFrame(JsonNode? processor, TokenizerSettings settings, string source)
    {
        var template = FindTemplate(processor, source);
        if (template is not null)
        {
            var prefix = new List<int>();
            var suffix = new List<int>();
            var seenSequence = false;
            foreach (var piece in template["single"]!.AsArray())
            {
                if (piece!["Sequence"] is not null)
                {
                    seenSequence = true;
                    continue;
                }

                var name = piece["SpecialToken"]!["id"]!.GetValue<string>();
                var ids = template["special_tokens"]?[name]?["ids"]?.AsArray().Select(i => i!.GetValue<int>()).ToArray()
                    ?? [RequireId(name)];
                (seenSequence ? suffix : prefix).AddRange(ids);
            }

            return (prefix.ToArray(), suffix.ToArray());
        }

        var bos = settings.AddBosToken == true && BosTokenId is { } b ? new[] { b } : [];
        var eos = settings.AddEosToken == true && EosTokenId is { } e ? new[] { e } : [];
        return (bos, eos);
    }

    private static JsonNode? FindTemplate(JsonNode? processor, string source)
    {
        if (processor is null)
            return null;
        var type = TokenizerJson.TypeOf(processor, "post_processor");
        return type switch
        {
            "TemplateProcessing" => processor,
            "ByteLevel" => null,
            "Sequence" => processor["processors"]!.AsArray().Select(p => FindTemplate(p, source)).LastOrDefault(t => t is not null),
            _ => throw TokenizerJson.Unsupported("post_processor", type, "TemplateProcessing, ByteLevel, Sequence"),
        };
    }

    private string ComputeHash()
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string line) => sha.AppendData(Encoding.UTF8.GetBytes(line + "\n"));
        Add("distill-tokenizer-v1 bpe");
        for (var id = 0; id < _idToToken.Length; id++)
        {
            if (_idToToken[id] is { } token)
                Add($"{id}\t{JsonSerializer.Serialize(token)}");
        }

        Add("merges");
        foreach (var (left, right) in _model.Merges)
            Add($"{JsonSerializer.Serialize(left)} {JsonSerializer.Serialize(right)}");
        Add("special");
        foreach (var token in _added.Values.Where(t => t.Special).OrderBy(t => t.Id))
            Add(token.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
