using System.Threading.Channels;
using Kiln.Runtime;

namespace Kiln.Serving;

/// <summary>
/// One sequence submitted to a <see cref="ServingEngine"/>: its new token ids arrive on <see cref="Tokens"/>
/// as they are generated; the channel completes when the sequence ends, after <see cref="FinishReason"/>
/// is set. <see cref="Cancel"/> (or the token given at submission) frees its slot at the next step.
/// </summary>
public sealed class EngineSequence
{
    private readonly Channel<int> _tokens = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private volatile bool _cancelRequested;

    internal EngineSequence(SequenceRequest request)
    {
        Request = request;
        Sampler = new Sampler(request.Sampling);
    }

    public SequenceRequest Request { get; }

    /// <summary>New token ids, in order; a stop id is not written.</summary>
    public ChannelReader<int> Tokens => _tokens.Reader;

    /// <summary>Why it ended; null while it runs.</summary>
    public FinishReason? FinishReason { get; private set; }

    /// <summary>Tokens generated so far, a final stop id included.</summary>
    public int GeneratedTokens { get; private set; }

    /// <summary>Asks the engine to end this sequence and free its slot (at the next step boundary).</summary>
    public void Cancel()
    {
        _cancelRequested = true;
        CancelRequested?.Invoke();
    }

    internal bool IsCancelRequested => _cancelRequested;

    internal Action? CancelRequested { get; set; }

    internal CancellationTokenRegistration Registration { get; set; }

    internal Sampler Sampler { get; }

    /// <summary>The cache slot it holds, or -1 while it waits.</summary>
    internal int Slot { get; set; } = -1;

    /// <summary>Prompt tokens already in its slot.</summary>
    internal int Prefilled { get; set; }

    /// <summary>The last generated token, to be fed by the next decode step; -1 before the first.</summary>
    internal int Pending { get; set; } = -1;

    internal void Emit(int token, bool isStop)
    {
        GeneratedTokens++;
        if (!isStop) _tokens.Writer.TryWrite(token);
    }

    internal void Finish(FinishReason reason, Exception? error = null)
    {
        if (FinishReason is not null) return;
        FinishReason = reason;
        Registration.Dispose();
        _tokens.Writer.TryComplete(error);
    }
}
