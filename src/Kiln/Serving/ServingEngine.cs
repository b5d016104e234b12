using Kiln.Runtime;

namespace Kiln.Serving;

/// <summary>
/// Continuous batching over one loaded model: sequences are submitted from any thread, wait in a queue
/// for a free slot of the <see cref="BatchedDecoder"/>, have their prompt prefilled by chunks, and then
/// decode together, one token each per step, until each ends; a sequence joins or leaves at any step.
/// One thread runs the steps, so the model runs one step at a time:
/// <list type="number">
/// <item>sequences asked to cancel leave (their slot is free for the next step);</item>
/// <item>waiting sequences take free slots, lowest first (which keeps the decode batch compact);</item>
/// <item>one prompt chunk runs (the oldest unfinished prefill); when it completes its prompt, the
/// sequence's first token is drawn from its logits;</item>
/// <item>one decode step runs every sequence that has a token to feed, each then draws its next token
/// with its own sampler (temperature, top-k, top-p, seed).</item>
/// </list>
/// </summary>
public sealed class ServingEngine : IDisposable
{
    private readonly LoadedModel _model;
    private readonly EngineOptions _options;
    private readonly BatchedDecoder _decoder;
    private readonly object _gate = new();
    private readonly Queue<EngineSequence> _waiting = new();
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly EngineSequence?[] _slots;
    private readonly List<EngineSequence> _prefilling = [];
    private readonly Thread _thread;
    private bool _accepting = true;
    private volatile bool _stopping;
    private int _busySlots;

    /// <param name="context">Positions each sequence may use (prompt and new tokens); default and at most the model's context.</param>
    public ServingEngine(LoadedModel model, EngineOptions options, int? context = null)
    {
        options.Validate();
        if (model.World.Size != 1) throw new KilnException($"serving runs a model in one process; this one is split over {model.World.Size} ranks (--tp)");
        _model = model;
        _options = options;
        Context = Math.Min(context ?? model.Context, model.Context);
        _decoder = new BatchedDecoder(model, options.Slots, Context, options.PrefillChunk);
        _slots = new EngineSequence?[options.Slots];
        _thread = new Thread(Loop) { IsBackground = true, Name = "kiln-engine" };
        _thread.Start();
    }

    /// <summary>Positions one sequence may use, prompt and new tokens together.</summary>
    public int Context { get; }

    public int Slots => _options.Slots;

    /// <summary>Bytes of the key/value cache when every slot is full.</summary>
    public long CacheBytes => _decoder.Cache.SlotBytes * Slots;

    /// <summary>Slots holding a sequence (prefilling or decoding).</summary>
    public int BusySlots => Volatile.Read(ref _busySlots);

    /// <summary>Sequences waiting for a slot.</summary>
    public int Waiting
    {
        get { lock (_gate) return _waiting.Count; }
    }

    /// <summary>
    /// Queues a sequence. Throws <see cref="KilnException"/> for a request the model cannot run (a bad
    /// id, a prompt that leaves no room in the context) and <see cref="EngineBusyException"/> when the
    /// queue is full or the engine is shutting down. Cancelling <paramref name="cancel"/> ends it.
    /// </summary>
    public EngineSequence Submit(SequenceRequest request, CancellationToken cancel = default)
    {
        _model.CheckTokens(request.PromptIds, "prompt", Context);
        if (request.PromptIds.Count >= Context)
            throw new KilnException($"prompt: {request.PromptIds.Count} tokens leave no room for a new token in the context of {Context}");
        if (request.MaxNewTokens < 1) throw new KilnException($"max new tokens: must be at least 1, got {request.MaxNewTokens}");
        var sequence = new EngineSequence(request) { CancelRequested = _wake.Set };
        // Registered before the engine can see the sequence, so that Finish always disposes the registration
        // (one made after a quick finish would keep the sequence reachable from the caller's token).
        sequence.Registration = cancel.Register(sequence.Cancel);
        lock (_gate)
        {
            if (!_accepting) throw Refused(sequence, new EngineBusyException("the server is shutting down", stopping: true));
            // At most Slots sequences run and MaxWaiting wait (a sequence passes through the queue even to a free slot).
            if (BusySlots + _waiting.Count >= Slots + _options.MaxWaiting)
                throw Refused(sequence, new EngineBusyException($"all {Slots} slots are busy and {_waiting.Count} requests are waiting", stopping: false));
            _waiting.Enqueue(sequence);
        }
        _wake.Set();
        return sequence;
    }

    // A refused sequence never reaches the engine: its registration goes with it.
    private static EngineBusyException Refused(EngineSequence sequence, EngineBusyException reason)
    {
        sequence.Registration.Dispose();
        return reason;
    }

    /// <summary>Refuses new sequences from now on; those already submitted run to their end.</summary>
    public void StopAccepting()
    {
        lock (_gate) _accepting = false;
    }

    /// <summary>Stops the engine: every sequence still running or waiting ends as cancelled.</summary>
    public void Dispose()
    {
        StopAccepting();
        _stopping = true;
        _wake.Set();
        _thread.Join();
        _decoder.Dispose();
        // _wake is not disposed: a reader may still cancel its (finished) sequence, which sets it.
    }

    private void Loop()
    {
        while (!_stopping)
        {
            _wake.Reset();
            try
            {
                if (!Step()) _wake.Wait();
                else _options.AfterStep?.Invoke();
            }
            catch (Exception e)
            {
                // A failed run (ONNX Runtime, out of memory) ends the sequences it touched; the engine goes on.
                foreach (var sequence in _slots.OfType<EngineSequence>().ToList()) Release(sequence, FinishReason.Cancelled, e);
            }
        }
        foreach (var sequence in _slots.OfType<EngineSequence>().ToList()) Release(sequence, FinishReason.Cancelled);
        lock (_gate)
        {
            while (_waiting.TryDequeue(out var sequence)) sequence.Finish(FinishReason.Cancelled);
        }
    }

    // One round of the schedule; false when there was nothing to do.
    private bool Step()
    {
        RetireCancelled();
        Admit();
        var worked = false;
        if (_prefilling.Count > 0)
        {
            PrefillChunk(_prefilling[0]);
            worked = true;
        }
        if (_slots.Any(s => s is { Pending: >= 0 }))
        {
            DecodeStep();
            worked = true;
        }
        return worked;
    }

    private void RetireCancelled()
    {
        foreach (var sequence in _slots)
        {
            if (sequence is { IsCancelRequested: true }) Release(sequence, FinishReason.Cancelled);
        }
        lock (_gate)
        {
            if (!_waiting.Any(s => s.IsCancelRequested)) return;
            var kept = _waiting.Where(s => !s.IsCancelRequested).ToList();
            foreach (var sequence in _waiting.Where(s => s.IsCancelRequested)) sequence.Finish(FinishReason.Cancelled);
            _waiting.Clear();
            foreach (var sequence in kept) _waiting.Enqueue(sequence);
        }
    }

    private void Admit()
    {
        for (var slot = 0; slot < _slots.Length; slot++)
        {
            if (_slots[slot] is not null) continue;
            EngineSequence? next;
            lock (_gate)
            {
                if (!_waiting.TryDequeue(out next)) return;
            }
            next.Slot = slot;
            _slots[slot] = next;
            _decoder.Clear(slot);
            _prefilling.Add(next);
            Interlocked.Increment(ref _busySlots);
        }
    }

    private void PrefillChunk(EngineSequence sequence)
    {
        var prompt = sequence.Request.PromptIds;
        var count = _decoder.ChunkLength(prompt.Count - sequence.Prefilled);
        var chunk = new int[count];
        for (var i = 0; i < count; i++) chunk[i] = prompt[sequence.Prefilled + i];
        var logits = _decoder.Prefill(sequence.Slot, chunk);
        sequence.Prefilled += count;
        if (sequence.Prefilled < prompt.Count) return;
        _prefilling.Remove(sequence);
        Accept(sequence, sequence.Sampler.Next(logits));
    }

    private void DecodeStep()
    {
        var rows = Array.FindLastIndex(_slots, s => s is { Pending: >= 0 }) + 1;
        var tokens = new int[rows];
        for (var r = 0; r < rows; r++) tokens[r] = _slots[r] is { Pending: >= 0 } s ? s.Pending : -1;
        var logits = _decoder.Decode(tokens);
        var vocab = _decoder.VocabSize;
        for (var r = 0; r < rows; r++)
        {
            if (tokens[r] < 0) continue;
            var sequence = _slots[r]!;
            Accept(sequence, sequence.Sampler.Next(logits.Slice(r * vocab, vocab)));
        }
    }

    // A new token of a sequence: hands it to the reader, then ends the sequence or queues the token to be fed.
    private void Accept(EngineSequence sequence, int token)
    {
        var isStop = sequence.Request.StopIds.Contains(token);
        sequence.Emit(token, isStop);
        if (isStop) Release(sequence, FinishReason.Stop);
        // Like Generator: stop at the token limit, or when the context has no place left to feed the token.
        else if (sequence.GeneratedTokens >= sequence.Request.MaxNewTokens || _decoder.Length(sequence.Slot) + 1 >= Context)
            Release(sequence, FinishReason.Length);
        else sequence.Pending = token;
    }

    private void Release(EngineSequence sequence, FinishReason reason, Exception? error = null)
    {
        if (sequence.Slot >= 0)
        {
            _slots[sequence.Slot] = null;
            _prefilling.Remove(sequence);
            sequence.Slot = -1;
            sequence.Pending = -1;
            Interlocked.Decrement(ref _busySlots);
        }
        sequence.Finish(reason, error);
    }
}
