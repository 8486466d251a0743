using System.Collections.Concurrent;
using System.Text;

namespace Distill.Mesh.Modeling.Tokenization;

/// <summary>
/// Byte-pair encoding of one pre-tokenized word, as HF tokenizers' BPE model does it: start from
/// single characters, repeatedly merge the adjacent pair of lowest merge rank (leftmost on ties).
/// Supports <c>ignore_merges</c> (a word already in the vocabulary maps straight to its id, as in
/// Llama 3), <c>byte_fallback</c> (characters outside the vocabulary become <c>&lt;0xXX&gt;</c> byte
/// tokens, as in Mistral/Llama 2) and an unknown token.
/// </summary>
public sealed class BpeModel
{
    private const int CacheLimit = 200_000;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<long, (int Rank, int Merged)> _merges;
    private readonly ConcurrentDictionary<string, int[]> _cache = new();
    private readonly int[] _byteTokens;

    public BpeModel(
        Dictionary<string, int> vocab,
        IReadOnlyList<(string Left, string Right)> merges,
        bool ignoreMerges = false,
        bool byteFallback = false,
        string? unknownToken = null,
        bool fuseUnknown = false)
    {
        _vocab = vocab;
        IgnoreMerges = ignoreMerges;
        ByteFallback = byteFallback;
        FuseUnknown = fuseUnknown;
        UnknownId = unknownToken is not null && vocab.TryGetValue(unknownToken, out var unk) ? unk : null;
        Merges = merges;

        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (var rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            if (!vocab.TryGetValue(left, out var l) || !vocab.TryGetValue(right, out var r) || !vocab.TryGetValue(left + right, out var merged))
                throw new TokenizerFormatException($"merge #{rank} '{left} {right}' uses a token that is not in the vocabulary");
            _merges.TryAdd(Key(l, r), (rank, merged));
        }

        _byteTokens = new int[256];
        for (var b = 0; b < 256; b++)
            _byteTokens[b] = vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
        if (byteFallback && _byteTokens.Any(id => id < 0))
            throw new TokenizerFormatException("byte_fallback is set but the vocabulary lacks some <0xXX> byte tokens");
    }

    public IReadOnlyDictionary<string, int> Vocabulary => _vocab;

    public IReadOnlyList<(string Left, string Right)> Merges { get; }

    public bool IgnoreMerges { get; }

    public bool ByteFallback { get; }

    public bool FuseUnknown { get; }

    public int? UnknownId { get; }

    /// <summary>Appends the ids of one word.</summary>
    public void Encode(string word, List<int> output)
    {
        if (word.Length == 0)
            return;
        if (!_cache.TryGetValue(word, out var ids))
        {
            ids = IgnoreMerges && _vocab.TryGetValue(word, out var whole) ? [whole] : Merge(word);
            if (_cache.Count >= CacheLimit)
                _cache.Clear();
            _cache.TryAdd(word, ids);
        }

        output.AddRange(ids);
    }

    private int[] Merge(string word)
    {
        var symbols = InitialSymbols(word);
        var n = symbols.Count;
        var ids = symbols.ToArray();
        var next = new int[n];
        var prev = new int[n];
        var alive = new bool[n];
        for (var i = 0; i < n; i++)
        {
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
            alive[i] = true;
        }

        var queue = new PriorityQueue<int, (int Rank, int Position)>();
        void Consider(int position)
        {
            var right = next[position];
            if (right >= 0 && ids[position] >= 0 && ids[right] >= 0 && _merges.TryGetValue(Key(ids[position], ids[right]), out var merge))
                queue.Enqueue(position, (merge.Rank, position));
        }

        for (var i = 0; i < n - 1; i++)
            Consider(i);

        while (queue.TryDequeue(out var position, out var priority))
        {
            var right = next[position];
            // Entries go stale when a neighbour merged since; a pair's rank identifies it exactly.
            if (!alive[position] || right < 0 || ids[position] < 0 || ids[right] < 0
                || !_merges.TryGetValue(Key(ids[position], ids[right]), out var merge) || merge.Rank != priority.Rank)
                continue;
            ids[position] = merge.Merged;
            alive[right] = false;
            next[position] = next[right];
            if (next[right] >= 0)
                prev[next[right]] = position;
            if (prev[position] >= 0)
                Consider(prev[position]);
            Consider(position);
        }

        var result = new List<int>(n);
        var lastWasUnknown = false;
        for (var i = 0; i < n; i++)
        {
            if (!alive[i])
                continue;
            if (ids[i] == UnknownMarker)
            {
                if (!(FuseUnknown && lastWasUnknown))
                    result.Add(UnknownId!.Value);
                lastWasUnknown = true;
                continue;
            }

            result.Add(ids[i] >= 0 ? ids[i] : -1 - ids[i]);
            lastWasUnknown = false;
        }

        return result.ToArray();
    }

    // Symbols that must never merge are negative: byte-fallback tokens as −1 − id, unknowns as this.
    private const int UnknownMarker = int.MinValue;

    private List<int> InitialSymbols(string word)
    {
        var symbols = new List<int>(word.Length);
        for (var i = 0; i < word.Length;)
        {
            var length = char.IsSurrogatePair(word, i) ? 2 : 1;
            var symbol = word.Substring(i, length);
            i += length;
            if (_vocab.TryGetValue(symbol, out var id))
            {
                symbols.Add(id);
            }
            else if (ByteFallback)
            {
                foreach (var b in Encoding.UTF8.GetBytes(symbol))
                    symbols.Add(-1 - _byteTokens[b]);
            }
            else if (UnknownId is not null)
            {
                symbols.Add(UnknownMarker);
            }
            else
            {
                throw new TokenizerFormatException($"character U+{char.ConvertToUtf32(symbol, 0):X4} is not in the vocabulary and the tokenizer has neither byte fallback nor an unknown token");
            }
        }

        return symbols;
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;
}
