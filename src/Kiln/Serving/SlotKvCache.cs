using System.Runtime.InteropServices;
using Kiln.Graph;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Kiln.Serving;

/// <summary>
/// The key/value cache of several sequences at once: per layer a key and a value tensor [slots, kv_heads,
/// capacity, head_dim] in fp32, one slot per sequence, allocated once. A slot's rows are contiguous, so
/// the first n slots are themselves a tensor [n, kv_heads, capacity, head_dim] (a decode step of n rows
/// binds that) and each slot alone is one [1, ...] (a prefill binds that); both are views of the same
/// memory, bound as past and present so that GroupQueryAttention appends in place.
/// </summary>
/// <remarks>
/// The memory is zero-filled on demand by the OS (calloc), so resident memory grows with the positions
/// the sequences actually use, not with slots × capacity.
/// </remarks>
public sealed unsafe class SlotKvCache : IDisposable
{
    private readonly nint[] _keys;
    private readonly nint[] _values;
    private readonly OrtValue[]?[] _firstRows;
    private readonly OrtValue[]?[] _slots;

    public SlotKvCache(KvCacheSignature signature, int slots, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Signature = signature;
        SlotCount = slots;
        Capacity = capacity;
        _keys = new nint[signature.Layers];
        _values = new nint[signature.Layers];
        _firstRows = new OrtValue[]?[slots];
        _slots = new OrtValue[]?[slots];
        try
        {
            for (var layer = 0; layer < signature.Layers; layer++)
            {
                _keys[layer] = (nint)NativeMemory.AllocZeroed((nuint)(slots * SlotFloats * sizeof(float)));
                _values[layer] = (nint)NativeMemory.AllocZeroed((nuint)(slots * SlotFloats * sizeof(float)));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public KvCacheSignature Signature { get; }

    public int SlotCount { get; }

    /// <summary>Tokens one slot holds at most.</summary>
    public int Capacity { get; }

    /// <summary>Bytes of keys and values one slot holds when full (all layers).</summary>
    public long SlotBytes => 2L * Signature.Layers * SlotFloats * sizeof(float);

    private long SlotFloats => (long)Signature.KvHeads * Capacity * Signature.HeadDim;

    /// <summary>Key and value of every layer (key 0, value 0, key 1, ...) for slots 0..rows-1 as one batch.</summary>
    public IReadOnlyList<OrtValue> FirstRows(int rows) => _firstRows[rows - 1] ??= Views(0, rows);

    /// <summary>Key and value of every layer (key 0, value 0, key 1, ...) for one slot as a batch of one.</summary>
    public IReadOnlyList<OrtValue> Slot(int slot) => _slots[slot] ??= Views(slot, 1);

    /// <summary>The keys of one layer and slot, [kv_heads, capacity, head_dim] row-major (for tests).</summary>
    public ReadOnlySpan<float> Keys(int layer, int slot) => new((float*)_keys[layer] + slot * SlotFloats, checked((int)SlotFloats));

    public void Dispose()
    {
        foreach (var views in _firstRows.Concat(_slots))
        {
            if (views is null) continue;
            foreach (var view in views) view.Dispose();
        }
        Array.Clear(_firstRows);
        Array.Clear(_slots);
        foreach (var buffer in _keys.Concat(_values)) NativeMemory.Free((void*)buffer);
        Array.Clear(_keys);
        Array.Clear(_values);
    }

    private OrtValue[] Views(int first, int rows)
    {
        long[] shape = [rows, Signature.KvHeads, Capacity, Signature.HeadDim];
        var bytes = rows * SlotFloats * sizeof(float);
        var views = new OrtValue[2 * Signature.Layers];
        for (var layer = 0; layer < Signature.Layers; layer++)
        {
            views[2 * layer] = View(_keys[layer], first, shape, bytes);
            views[2 * layer + 1] = View(_values[layer], first, shape, bytes);
        }
        return views;
    }

    private OrtValue View(nint buffer, int first, long[] shape, long bytes) =>
        OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float, shape,
            buffer + (nint)(first * SlotFloats * sizeof(float)), bytes);
}
