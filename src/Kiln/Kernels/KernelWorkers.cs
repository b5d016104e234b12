using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Kiln.Kernels;

/// <summary>
/// Kiln's own threads for the parts of one kernel product. ONNX Runtime's intra-op workers sleep between
/// ops (spinning is off by default, docs/performance.md), so each product woke a sleeping worker, and one
/// decode step is about eighty products of well under a millisecond each: the wake-ups held the second thread
/// idle for a tenth of every step. These workers spin for <see cref="SpinLimit"/> after each product (enough to
/// bridge the gaps between one step's products, short enough to hand the core back to another process within
/// a fraction of a millisecond) and then sleep. The calling thread claims parts too, so a part no worker has
/// claimed yet (a worker the OS has not scheduled) never holds a product up. One product at a time: a caller
/// that finds the workers busy (another session running at that moment) uses ORT's pool as before.
/// </summary>
public static unsafe class KernelWorkers
{
    /// <summary>How long a worker waits for the next product before it sleeps.</summary>
    public static readonly TimeSpan SpinLimit = TimeSpan.FromMicroseconds(200);

    /// <summary>Most workers started: one per core besides the caller's.</summary>
    private static readonly int MaxWorkers = Math.Max(0, Environment.ProcessorCount - 1);

    /// <summary>How long the workers go without spinning after the OS interrupted one's spin.</summary>
    public static readonly TimeSpan QuietAfterPreemption = TimeSpan.FromSeconds(1);

    private static readonly long SpinTicks = Ticks(SpinLimit);
    private static readonly long QuietTicks = Ticks(QuietAfterPreemption);

    // A spin loop's look at the clock comes every microsecond or two; a gap this long is the OS running something else.
    private static readonly long PreemptedTicks = Ticks(TimeSpan.FromMicroseconds(500));

    private static readonly object Sleep = new();

    // The current product: a caller holds Busy while it runs one. Claims packs the product's generation (high 32
    // bits) with its next unclaimed part (low 32), so a part is claimed by one compare-exchange and a worker that
    // still holds an old generation cannot claim (or lose) a part of the next product.
    private static int _busy, _generation, _parts, _finished, _workers, _sleepers;
    private static long _claims, _spinAgainAt;
    private static delegate*<void*, int, void> _part;
    private static void* _state;

    /// <summary>
    /// Runs <paramref name="part"/>(<paramref name="state"/>, i) for i in [0, <paramref name="parts"/>) and returns
    /// when all are done: on Kiln's workers and the calling thread, or on the ORT pool of <paramref name="context"/>
    /// when the workers are busy with another product.
    /// </summary>
    public static void Run(nint context, int parts, delegate*<void*, int, void> part, void* state)
    {
        if (TryRun(parts, part, state)) return;
        var job = new OrtJob { Part = part, State = state };
        OrtNative.ParallelFor(context, &RunOrtPart, parts, &job);
    }

    /// <summary>Runs the parts on Kiln's workers and the calling thread; false (nothing run) when another product holds them.</summary>
    public static bool TryRun(int parts, delegate*<void*, int, void> part, void* state)
    {
        if (parts - 1 > MaxWorkers || Interlocked.CompareExchange(ref _busy, 1, 0) != 0) return false;
        try
        {
            StartWorkers(parts - 1);
            _part = part;
            _state = state;
            _parts = parts;
            _finished = 0;
            var generation = _generation + 1;
            Volatile.Write(ref _claims, (long)generation << 32);
            // A full fence: a worker going to sleep either sees the new generation or is counted in _sleepers.
            Interlocked.Exchange(ref _generation, generation);
            if (Volatile.Read(ref _sleepers) > 0)
                lock (Sleep) Monitor.PulseAll(Sleep);
            RunClaimedParts(generation);
            // Spin without yielding: a yield on a shared core hands it to the other thread for a whole time slice.
            while (Volatile.Read(ref _finished) < parts) Thread.SpinWait(1);
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
        return true;
    }

    // Claims and runs parts of product `generation` until none is left unclaimed.
    private static void RunClaimedParts(int generation)
    {
        while (true)
        {
            var claims = Volatile.Read(ref _claims);
            if ((int)(claims >> 32) != generation || (int)claims >= _parts) return;
            if (Interlocked.CompareExchange(ref _claims, claims + 1, claims) != claims) continue;
            _part(_state, (int)claims);
            Interlocked.Increment(ref _finished);
        }
    }

    private static void StartWorkers(int needed)
    {
        for (; _workers < needed; _workers++)
            new Thread(Work) { IsBackground = true, Name = "kiln kernel worker" }.Start(_generation);
    }

    private static void Work(object? startGeneration)
    {
        var seen = (int)startGeneration!;
        while (true)
        {
            seen = NextGeneration(seen);
            RunClaimedParts(seen);
        }
    }

    // Spins until a product newer than `seen` is published or SpinLimit passes, then sleeps until one is. A spin
    // the OS interrupts (a gap between two looks at the clock) means another thread wants this core: then the
    // workers sleep at once for a while, since a worker that spins on a shared core runs late for the next
    // product, while one that sleeps is run promptly when woken.
    private static int NextGeneration(int seen)
    {
        var now = Stopwatch.GetTimestamp();
        if (now >= Volatile.Read(ref _spinAgainAt))
        {
            var deadline = now + SpinTicks;
            do
            {
                for (var i = 0; i < 64; i++)
                {
                    var generation = Volatile.Read(ref _generation);
                    if (generation != seen) return generation;
                    Thread.SpinWait(1);
                }
                var last = now;
                now = Stopwatch.GetTimestamp();
                if (now - last > PreemptedTicks)
                {
                    Volatile.Write(ref _spinAgainAt, now + QuietTicks);
                    break;
                }
            }
            while (now < deadline);
        }
        lock (Sleep)
        {
            Interlocked.Increment(ref _sleepers);
            int next;
            while ((next = Volatile.Read(ref _generation)) == seen) Monitor.Wait(Sleep);
            Interlocked.Decrement(ref _sleepers);
            return next;
        }
    }

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    private struct OrtJob
    {
        public delegate*<void*, int, void> Part;
        public void* State;
    }

    [UnmanagedCallersOnly]
    private static void RunOrtPart(void* job, nuint part) => ((OrtJob*)job)->Part(((OrtJob*)job)->State, (int)part);
}
