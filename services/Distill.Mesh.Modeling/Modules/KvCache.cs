using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Modules;

/// <summary>
/// Keys and values of past positions, per layer, for incremental decoding. Owns its tensors
/// (outside any dispose scope) and frees them on dispose.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor?[] _keys;
    private readonly Tensor?[] _values;

    public KvCache(int layers)
    {
        _keys = new Tensor?[layers];
        _values = new Tensor?[layers];
    }

    /// <summary>Positions cached so far.</summary>
    public long Length => _keys[0]?.shape[2] ?? 0;

    /// <summary>Appends a step's [B, kv_heads, T, head_dim] keys and values; returns the full ones.</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor keys, Tensor values)
    {
        _keys[layer] = Concat(_keys[layer], keys);
        _values[layer] = Concat(_values[layer], values);
        return (_keys[layer]!, _values[layer]!);
    }

    /// <summary>Keeps only the batch rows in <paramref name="rows"/> (drops finished sequences).</summary>
    public void SelectRows(Tensor rows)
    {
        for (var i = 0; i < _keys.Length; i++)
        {
            _keys[i] = Replace(_keys[i], t => t.index_select(0, rows));
            _values[i] = Replace(_values[i], t => t.index_select(0, rows));
        }
    }

    private static Tensor Concat(Tensor? past, Tensor step) =>
        Replace(past, p => torch.cat([p, step], 2)) ?? step.detach().clone().DetachFromDisposeScope();

    private static Tensor? Replace(Tensor? old, Func<Tensor, Tensor> make)
    {
        if (old is null)
            return null;
        var replacement = make(old).detach().DetachFromDisposeScope();
        old.Dispose();
        return replacement;
    }

    public void Dispose()
    {
        foreach (var t in _keys.Concat(_values))
            t?.Dispose();
        Array.Clear(_keys);
        Array.Clear(_values);
    }
}
