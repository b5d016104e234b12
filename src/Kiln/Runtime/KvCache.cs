using Kiln.Graph;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Kiln.Runtime;

/// <summary>
/// The key/value cache of one sequence: per layer a key and a value tensor [1, kv_heads, capacity,
/// head_dim] in fp32, allocated once, zeroed, and bound as both past and present of every step so
/// the attention kernel appends in place.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly OrtValue[] _keys;
    private readonly OrtValue[] _values;

    public KvCache(KvCacheSignature signature, int capacity)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "the cache needs room for at least one token");
        Signature = signature;
        Capacity = capacity;
        long[] shape = [1, signature.KvHeads, capacity, signature.HeadDim];
        _keys = new OrtValue[signature.Layers];
        _values = new OrtValue[signature.Layers];
        try
        {
            for (var layer = 0; layer < signature.Layers; layer++)
            {
                _keys[layer] = Allocate(shape);
                _values[layer] = Allocate(shape);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public KvCacheSignature Signature { get; }

    /// <summary>Tokens the cache holds at most.</summary>
    public int Capacity { get; }

    public long Bytes => 2L * Signature.Layers * Signature.KvHeads * Capacity * Signature.HeadDim * sizeof(float);

    public OrtValue Key(int layer) => _keys[layer];

    public OrtValue Value(int layer) => _values[layer];

    /// <summary>The cached keys of one layer, [kv_heads, capacity, head_dim] row-major.</summary>
    public ReadOnlySpan<float> Keys(int layer) => _keys[layer].GetTensorDataAsSpan<float>();

    public void Dispose()
    {
        foreach (var value in _keys.Concat(_values)) value?.Dispose();
    }

    private static OrtValue Allocate(long[] shape)
    {
        var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Float, shape);
        value.GetTensorMutableDataAsSpan<float>().Clear();
        return value;
    }
}
