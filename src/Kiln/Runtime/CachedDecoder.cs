using Kiln.Graph;
using Microsoft.ML.OnnxRuntime;

namespace Kiln.Runtime;

/// <summary>
/// Runs a graph with a key/value cache (<see cref="KvCacheSignature"/>) for one sequence: the prompt in
/// one prefill step, then one token per decode step. Each layer's past and present are bound to the
/// same <see cref="KvCache"/> buffer (GroupQueryAttention then appends in place, with no copy of the
/// cache), and the decode step's inputs and logits live in buffers bound once: a step allocates
/// nothing on Kiln's side.
/// </summary>
public sealed class CachedDecoder : IDisposable
{
    private const string InputIds = "input_ids";
    private const string PositionIds = "position_ids";

    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly string _logitsName;
    private readonly int _vocab;
    private readonly bool _takesPositions;
    private readonly long[] _token = new long[1];
    private readonly long[] _position = new long[1];
    private readonly int[] _seqLens = new int[1];
    private readonly int[] _total = new int[1];
    private readonly float[] _logits;
    private readonly List<OrtValue> _decodeValues = [];
    private readonly OrtIoBinding _decodeBinding;

    public CachedDecoder(LoadedModel model, int capacity)
    {
        var signature = model.KvCache ?? throw new InvalidOperationException("the model's graph has no key/value cache");
        _session = model.Session.Session;
        _logitsName = model.Graph.Outputs[0].Name;
        _vocab = model.VocabSize;
        _takesPositions = model.Graph.Inputs.Any(i => i.Name == PositionIds);
        _logits = new float[_vocab];
        Cache = new KvCache(signature, capacity);
        _decodeBinding = _session.CreateIoBinding();
        try
        {
            BindInputs(_decodeBinding, _decodeValues, _token, _position, 1);
            _decodeValues.Add(OrtValue.CreateTensorValueFromMemory(_logits, [1, 1, _vocab]));
            _decodeBinding.BindOutput(_logitsName, _decodeValues[^1]);
            BindCache(_decodeBinding);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public KvCache Cache { get; }

    /// <summary>Tokens in the cache so far.</summary>
    public int Length { get; private set; }

    /// <summary>Runs the prompt on the empty cache; returns the last position's logits (valid until the next step).</summary>
    public ReadOnlySpan<float> Prefill(IReadOnlyList<long> ids)
    {
        var all = PrefillAllPositions(ids);
        all.AsSpan((ids.Count - 1) * _vocab, _vocab).CopyTo(_logits);
        return _logits;
    }

    /// <summary>Runs the prompt on the empty cache; returns every position's logits, [ids.Count * vocab].</summary>
    public float[] PrefillAllPositions(IReadOnlyList<long> ids)
    {
        if (Length != 0) throw new InvalidOperationException("prefill needs an empty cache");
        if (ids.Count == 0 || ids.Count > Cache.Capacity)
            throw new KilnException($"prefill: {ids.Count} tokens for a cache of {Cache.Capacity}");
        var count = ids.Count;
        var logits = new float[count * _vocab];
        var values = new List<OrtValue>();
        using var binding = _session.CreateIoBinding();
        try
        {
            BindInputs(binding, values, ids.ToArray(), Enumerable.Range(0, count).Select(p => (long)p).ToArray(), count);
            values.Add(OrtValue.CreateTensorValueFromMemory(logits, [1, count, _vocab]));
            binding.BindOutput(_logitsName, values[^1]);
            BindCache(binding);
            _seqLens[0] = count - 1;
            _total[0] = count;
            Run(binding);
        }
        finally
        {
            foreach (var value in values) value.Dispose();
        }
        Length = count;
        return logits;
    }

    /// <summary>Appends one token; returns its logits (valid until the next step).</summary>
    public ReadOnlySpan<float> Decode(long id)
    {
        if (Length == 0) throw new InvalidOperationException("decode needs a prefill first");
        if (Length >= Cache.Capacity) throw new KilnException($"decode: the cache of {Cache.Capacity} tokens is full");
        _token[0] = id;
        _position[0] = Length;
        _seqLens[0] = Length;
        _total[0] = Length + 1;
        Run(_decodeBinding);
        Length++;
        return _logits;
    }

    public void Dispose()
    {
        _decodeBinding?.Dispose();
        foreach (var value in _decodeValues) value.Dispose();
        Cache?.Dispose();
        _runOptions.Dispose();
    }

    // input_ids and position_ids [1, count], seqlens_k [1] and total_sequence_length [] over this decoder's arrays.
    private void BindInputs(OrtIoBinding binding, List<OrtValue> owned, long[] ids, long[] positions, int count)
    {
        void Bind(string name, OrtValue value)
        {
            owned.Add(value);
            binding.BindInput(name, value);
        }
        Bind(InputIds, OrtValue.CreateTensorValueFromMemory(ids, [1, count]));
        if (_takesPositions) Bind(PositionIds, OrtValue.CreateTensorValueFromMemory(positions, [1, count]));
        Bind(KvCacheSignature.SeqLensInput, OrtValue.CreateTensorValueFromMemory(_seqLens, [1]));
        Bind(KvCacheSignature.TotalLengthInput, OrtValue.CreateTensorValueFromMemory(_total, []));
    }

    private void BindCache(OrtIoBinding binding)
    {
        for (var layer = 0; layer < Cache.Signature.Layers; layer++)
        {
            binding.BindInput(KvCacheSignature.PastKey(layer), Cache.Key(layer));
            binding.BindInput(KvCacheSignature.PastValue(layer), Cache.Value(layer));
            binding.BindOutput(KvCacheSignature.PresentKey(layer), Cache.Key(layer));
            binding.BindOutput(KvCacheSignature.PresentValue(layer), Cache.Value(layer));
        }
    }

    private void Run(OrtIoBinding binding)
    {
        try
        {
            _session.RunWithBinding(_runOptions, binding);
        }
        catch (OnnxRuntimeException e)
        {
            throw new KilnException($"ONNX Runtime failed to run the model: {e.Message}", e);
        }
    }
}
