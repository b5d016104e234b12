using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Kiln.Benchmarks;

/// <summary>One measurement of memory read bandwidth.</summary>
/// <param name="BytesPerSecond">The fastest pass: buffer bytes / seconds.</param>
/// <param name="Checksum">The wrapping sum of the buffer's 64-bit words (proves every word was read).</param>
public sealed record ReadBandwidth(double BytesPerSecond, long BufferBytes, int Threads, int Passes, ulong Checksum);

/// <summary>
/// Measures how fast this machine streams memory into the cores: several threads sum disjoint slices
/// of a native buffer (much larger than the last-level cache) with 256-bit vector adds, and the
/// fastest of several passes counts. This is the ceiling a memory-bound decode step can reach. The
/// buffer is filled once and can be measured many times, e.g. next to each timed run of a benchmark.
/// </summary>
public sealed unsafe class ReadBandwidthProbe : IDisposable
{
    /// <summary>1 GiB: several times any last-level cache of the CPUs Kiln targets.</summary>
    public const long DefaultBufferBytes = 1L << 30;

    private ulong* _buffer;
    private readonly long _words;

    /// <summary>
    /// Allocates <paramref name="bufferBytes"/> (rounded down to 8-byte words) with word i = i, so the
    /// checksum of a full read is n(n-1)/2 mod 2^64. Writing every word also faults every page in, so
    /// no pass pays for page faults.
    /// </summary>
    public ReadBandwidthProbe(long bufferBytes = DefaultBufferBytes)
    {
        _words = bufferBytes / sizeof(ulong);
        ArgumentOutOfRangeException.ThrowIfLessThan(_words, 1L, nameof(bufferBytes));
        _buffer = (ulong*)NativeMemory.AlignedAlloc((nuint)(_words * sizeof(ulong)), 64);
        for (long i = 0; i < _words; i++) _buffer[i] = (ulong)i;
    }

    /// <summary>Times <paramref name="passes"/> reads of the whole buffer by <paramref name="threads"/> threads.</summary>
    public ReadBandwidth Measure(int threads, int passes = 5)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(passes, 1);
        ObjectDisposedException.ThrowIf(_buffer == null, this);
        var best = double.MaxValue;
        ulong checksum = 0;
        for (var pass = 0; pass < passes; pass++)
        {
            var (seconds, sum) = TimePass(_buffer, _words, threads);
            best = Math.Min(best, seconds);
            checksum = sum;
        }
        return new ReadBandwidth(_words * sizeof(ulong) / best, _words * sizeof(ulong), threads, passes, checksum);
    }

    /// <summary>One measurement over a buffer allocated for it.</summary>
    public static ReadBandwidth Measure(int threads, long bufferBytes = DefaultBufferBytes, int passes = 5)
    {
        using var probe = new ReadBandwidthProbe(bufferBytes);
        return probe.Measure(threads, passes);
    }

    public void Dispose()
    {
        if (_buffer == null) return;
        NativeMemory.AlignedFree(_buffer);
        _buffer = null;
    }

    // Threads start together on a barrier; the clock runs from the release to the last join.
    private static (double Seconds, ulong Sum) TimePass(ulong* buffer, long words, int threads)
    {
        var sums = new ulong[threads];
        using var start = new Barrier(threads + 1);
        var workers = new Thread[threads];
        var chunk = words / threads;
        for (var t = 0; t < threads; t++)
        {
            var index = t;
            var begin = index * chunk;
            var end = index == threads - 1 ? words : begin + chunk;
            workers[t] = new Thread(() =>
            {
                start.SignalAndWait();
                sums[index] = Sum(buffer + begin, end - begin);
            });
            workers[t].Start();
        }
        start.SignalAndWait();
        var clock = Stopwatch.StartNew();
        foreach (var worker in workers) worker.Join();
        var seconds = clock.Elapsed.TotalSeconds;
        ulong total = 0;
        foreach (var s in sums) total += s;
        return (seconds, total);
    }

    // Four independent accumulators keep several loads in flight per core. Fully optimized from the
    // first call: tier-0 code of a loop that runs once per pass would measure the JIT, not the memory.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ulong Sum(ulong* p, long count)
    {
        var lanes = Vector256<ulong>.Count;
        Vector256<ulong> a0 = default, a1 = default, a2 = default, a3 = default;
        long i = 0;
        for (; i + 4 * lanes <= count; i += 4 * lanes)
        {
            a0 += Vector256.Load(p + i);
            a1 += Vector256.Load(p + i + lanes);
            a2 += Vector256.Load(p + i + 2 * lanes);
            a3 += Vector256.Load(p + i + 3 * lanes);
        }
        var total = Vector256.Sum(a0 + a1 + a2 + a3);
        for (; i < count; i++) total += p[i];
        return total;
    }
}
