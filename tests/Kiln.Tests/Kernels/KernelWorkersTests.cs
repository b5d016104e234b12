using System.Runtime.InteropServices;
using Kiln.Kernels;

namespace Kiln.Tests.Kernels;

/// <summary>
/// Kiln's kernel worker threads: every part of every product runs exactly once, whether the workers were
/// spinning or asleep when it came and whether other callers wanted them at the same moment. (The products
/// themselves are checked through real ONNX Runtime sessions with two threads in the kernel tests.)
/// </summary>
public sealed unsafe class KernelWorkersTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    private struct Tally
    {
        public int* Counts;
        public int Parts;
        public int Product;
    }

    private static void CountPart(void* state, int part)
    {
        var tally = (Tally*)state;
        Interlocked.Increment(ref tally->Counts[tally->Product * tally->Parts + part]);
    }

    private static int Parts => Math.Min(Environment.ProcessorCount, 4);

    [Fact]
    public void Every_part_runs_once_whether_the_workers_spin_or_sleep()
    {
        const int products = 3000;
        var parts = Parts;
        var counts = (int*)NativeMemory.AllocZeroed((nuint)(products * parts), sizeof(int));
        var finished = false;
        try
        {
            var accepted = 0;
            var run = new Thread(() =>
            {
                var random = new Random(7);
                for (var p = 0; p < products; p++)
                {
                    var tally = new Tally { Counts = counts, Parts = parts, Product = p };
                    // Other test classes' sessions may hold the workers at that moment: then the caller runs the parts.
                    if (KernelWorkers.TryRun(parts, &CountPart, &tally)) accepted++;
                    else for (var i = 0; i < parts; i++) CountPart(&tally, i);
                    // Now and then a pause longer than the workers spin, so that they are asleep when the next product comes.
                    if (random.Next(100) == 0) Thread.Sleep(KernelWorkers.SpinLimit * 3);
                }
            });
            run.Start();
            finished = run.Join(Patience);
            Assert.True(finished, "the products did not finish");
            Assert.True(accepted > products / 2, $"the workers took only {accepted} of {products} products");
            for (var i = 0; i < products * parts; i++) Assert.True(counts[i] == 1, $"product {i / parts} part {i % parts} ran {counts[i]} times");
        }
        finally
        {
            // A thread that did not finish may still write to the counts.
            if (finished) NativeMemory.Free(counts);
        }
    }

    [Fact]
    public void Callers_at_the_same_moment_each_get_every_part_run_once()
    {
        const int callers = 4, products = 1000;
        var parts = Parts;
        var counts = (int*)NativeMemory.AllocZeroed((nuint)(callers * products * parts), sizeof(int));
        var finished = false;
        try
        {
            var runs = Enumerable.Range(0, callers).Select(c => new Thread(() =>
            {
                for (var p = 0; p < products; p++)
                {
                    var tally = new Tally { Counts = counts, Parts = parts, Product = c * products + p };
                    if (KernelWorkers.TryRun(parts, &CountPart, &tally)) continue;
                    // Refused: the workers ran none of it, so the caller runs every part itself (as ORT's pool would).
                    for (var i = 0; i < parts; i++) CountPart(&tally, i);
                }
            })).ToArray();
            foreach (var run in runs) run.Start();
            finished = runs.All(run => run.Join(Patience));
            Assert.True(finished, "the products did not finish");
            for (var i = 0; i < callers * products * parts; i++) Assert.True(counts[i] == 1, $"product {i / parts} part {i % parts} ran {counts[i]} times");
        }
        finally
        {
            // A thread that did not finish may still write to the counts.
            if (finished) NativeMemory.Free(counts);
        }
    }

    [Fact]
    public void More_parts_than_cores_are_refused()
    {
        var tally = new Tally();
        Assert.False(KernelWorkers.TryRun(Environment.ProcessorCount + 1, &CountPart, &tally));
    }
}
