using Kiln.Graph;
using Kiln.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace Kiln.Serving;

/// <summary>
/// Runs a graph with a key/value cache (<see cref="KvCacheSignature"/>) for several sequences, one per
/// slot of a <see cref="SlotKvCache"/>: a prompt goes in by chunks into its own slot (<see cref="Prefill"/>),
/// and one decode step runs one token of every slot 0..rows-1 through the weights together
/// (<see cref="Decode"/>), each row at its own length.
/// </summary>
/// <remarks>
/// GroupQueryAttention reads each row's length from seqlens_k (tokens so far minus one, per row) and
/// total_sequence_length (the longest row), so rows of different lengths share a step. It accepts more
/// than one new token per row only in a batch of one (ONNX Runtime's check: "batch_size must be 1 when
/// sequence_length > 1 and past context is given"), which is why a prompt chunk runs on its slot alone.
/// A decode step covers slots 0..rows-1 (a batch is a contiguous block of the cache); a slot in that
/// range with no token to decode runs a throwaway row: it writes one position at the slot's current
/// length, which its next chunk or sequence overwrites, and its length does not change.
/// </remarks>
public sealed class BatchedDecoder : IDisposable
{
    private const string InputIds = "input_ids";
    private const string PositionIds = "position_ids";

    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly string _logitsName;
    private readonly bool _takesPositions;
    private readonly int[] _lengths;
    private readonly float[] _chunkLogits;
    private readonly DecodeBatch?[] _batches;

    public BatchedDecoder(LoadedModel model, int slots, int capacity, int maxChunk)
    {
        var signature = model.KvCache ?? throw new KilnException("serving needs a graph with a key/value cache (insert_kv_cache)");
        ArgumentOutOfRangeException.ThrowIfLessThan(maxChunk, 1);
        _session = model.Session.Session;
        _logitsName = model.Graph.Outputs[0].Name;
        VocabSize = model.VocabSize;
        _takesPositions = model.Graph.Inputs.Any(i => i.Name == PositionIds);
        MaxChunk = maxChunk;
        _lengths = new int[slots];
        _chunkLogits = new float[(long)maxChunk * VocabSize];
        _batches = new DecodeBatch?[slots];
        Cache = new SlotKvCache(signature, slots, capacity);
    }

    public SlotKvCache Cache { get; }

    public int VocabSize { get; }

    /// <summary>Most tokens one <see cref="Prefill"/> call takes.</summary>
    public int MaxChunk { get; }

    /// <summary>Tokens in a slot so far.</summary>
    public int Length(int slot) => _lengths[slot];

    /// <summary>Empties a slot for a new sequence (its old keys and values are overwritten as the new one grows).</summary>
    public void Clear(int slot) => _lengths[slot] = 0;

    /// <summary>
    /// How many of a prompt's <paramref name="remaining"/> tokens the next chunk takes: at most
    /// <see cref="MaxChunk"/>, and one less when exactly one token would be left for a last chunk (with a
    /// <see cref="MaxChunk"/> of 3 or more). A chunk of one token after others runs attention's one-row
    /// path (a decode step), whose sums round differently from a chunk's (measured up to 3e-6 on the
    /// logits); chunks of two or more give a prompt exactly the logits of one prefill, and so a sequence
    /// exactly what it gets alone.
    /// </summary>
    public int ChunkLength(int remaining) =>
        remaining == MaxChunk + 1 && MaxChunk >= 3 ? MaxChunk - 1 : Math.Min(MaxChunk, remaining);

    /// <summary>Appends a chunk of prompt tokens to a slot; returns the logits after its last token (valid until the next call).</summary>
    public ReadOnlySpan<float> Prefill(int slot, ReadOnlySpan<int> ids)
    {
        var (past, count) = (_lengths[slot], ids.Length);
        if (count == 0 || count > MaxChunk) throw new ArgumentOutOfRangeException(nameof(ids), count, $"a chunk holds 1 to {MaxChunk} tokens");
        if (past + count > Cache.Capacity) throw new KilnException($"prefill: {past + count} tokens for a slot of {Cache.Capacity}");
        var tokens = new long[count];
        var positions = new long[count];
        for (var i = 0; i < count; i++) (tokens[i], positions[i]) = (ids[i], past + i);
        var values = new List<OrtValue>();
        using var binding = _session.CreateIoBinding();
        try
        {
            void Bind(string name, OrtValue value)
            {
                values.Add(value);
                binding.BindInput(name, value);
            }
            Bind(InputIds, OrtValue.CreateTensorValueFromMemory(tokens, [1, count]));
            if (_takesPositions) Bind(PositionIds, OrtValue.CreateTensorValueFromMemory(positions, [1, count]));
            Bind(KvCacheSignature.SeqLensInput, OrtValue.CreateTensorValueFromMemory(new[] { past + count - 1 }, [1]));
            Bind(KvCacheSignature.TotalLengthInput, OrtValue.CreateTensorValueFromMemory(new[] { past + count }, []));
            values.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _chunkLogits.AsMemory(0, count * VocabSize), [1, count, VocabSize]));
            binding.BindOutput(_logitsName, values[^1]);
            BindCache(binding, Cache.Slot(slot));
            Run(binding);
        }
        finally
        {
            foreach (var value in values) value.Dispose();
        }
        _lengths[slot] = past + count;
        return _chunkLogits.AsSpan((count - 1) * VocabSize, VocabSize);
    }

    /// <summary>
    /// One decode step over slots 0..tokens.Length-1: tokens[r] is the next token of slot r's sequence, or
    /// negative for a slot with nothing to decode (a throwaway row). Returns the logits, [rows, vocab]
    /// row-major (valid until the next call); a throwaway row's are meaningless.
    /// </summary>
    public ReadOnlySpan<float> Decode(ReadOnlySpan<int> tokens)
    {
        var rows = tokens.Length;
        var batch = _batches[rows - 1] ??= new DecodeBatch(this, rows);
        var longest = 0;
        for (var r = 0; r < rows; r++)
        {
            var length = _lengths[r];
            if (tokens[r] >= 0 && length >= Cache.Capacity) throw new KilnException($"decode: slot {r} is full ({Cache.Capacity} tokens)");
            // A throwaway row writes at its slot's length (never past the end: a full slot's last place is reused).
            var position = Math.Min(length, Cache.Capacity - 1);
            batch.Ids[r] = Math.Max(tokens[r], 0);
            batch.Positions[r] = position;
            batch.SeqLens[r] = position;
            longest = Math.Max(longest, position + 1);
        }
        batch.Total[0] = longest;
        Run(batch.Binding);
        for (var r = 0; r < rows; r++)
        {
            if (tokens[r] >= 0) _lengths[r]++;
        }
        return batch.Logits;
    }

    public void Dispose()
    {
        foreach (var batch in _batches) batch?.Dispose();
        Cache.Dispose();
        _runOptions.Dispose();
    }

    private static void BindCache(OrtIoBinding binding, IReadOnlyList<OrtValue> views)
    {
        for (var layer = 0; layer < views.Count / 2; layer++)
        {
            binding.BindInput(KvCacheSignature.PastKey(layer), views[2 * layer]);
            binding.BindInput(KvCacheSignature.PastValue(layer), views[2 * layer + 1]);
            binding.BindOutput(KvCacheSignature.PresentKey(layer), views[2 * layer]);
            binding.BindOutput(KvCacheSignature.PresentValue(layer), views[2 * layer + 1]);
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

    // The inputs and logits of a decode step of one batch size, bound once and reused by every step of that size.
    private sealed class DecodeBatch : IDisposable
    {
        private readonly List<OrtValue> _values = [];

        public DecodeBatch(BatchedDecoder decoder, int rows)
        {
            Ids = new long[rows];
            Positions = new long[rows];
            SeqLens = new int[rows];
            Logits = new float[(long)rows * decoder.VocabSize];
            Binding = decoder._session.CreateIoBinding();
            try
            {
                Bind(InputIds, OrtValue.CreateTensorValueFromMemory(Ids, [rows, 1]));
                if (decoder._takesPositions) Bind(PositionIds, OrtValue.CreateTensorValueFromMemory(Positions, [rows, 1]));
                Bind(KvCacheSignature.SeqLensInput, OrtValue.CreateTensorValueFromMemory(SeqLens, [rows]));
                Bind(KvCacheSignature.TotalLengthInput, OrtValue.CreateTensorValueFromMemory(Total, []));
                _values.Add(OrtValue.CreateTensorValueFromMemory(Logits, [rows, 1, decoder.VocabSize]));
                Binding.BindOutput(decoder._logitsName, _values[^1]);
                BindCache(Binding, decoder.Cache.FirstRows(rows));
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public long[] Ids { get; }
        public long[] Positions { get; }
        public int[] SeqLens { get; }
        public int[] Total { get; } = new int[1];
        public float[] Logits { get; }
        public OrtIoBinding Binding { get; }

        public void Dispose()
        {
            Binding.Dispose();
            foreach (var value in _values) value.Dispose();
        }

        private void Bind(string name, OrtValue value)
        {
            _values.Add(value);
            Binding.BindInput(name, value);
        }
    }
}
