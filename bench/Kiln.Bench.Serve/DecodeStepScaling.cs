using System.Diagnostics;
using Kiln.Compile;
using Kiln.Runtime;
using Kiln.Serving;

namespace Kiln.Bench.Serve;

/// <summary>One batch size's decode step: median milliseconds, and that step's time over batch 1's.</summary>
public sealed record DecodeStepTime(int Rows, double MedianMs, double RelativeToOneRow)
{
    /// <summary>Tokens per second the batch decodes at this step time.</summary>
    public double TokensPerSecond => Rows / (MedianMs / 1000);
}

/// <summary>
/// An in-process measurement, not the server's: the model loaded in this process, one
/// <see cref="BatchedDecoder"/> decode step timed at batch 1, 2, 4 and 8 (each slot first prefilled with a
/// prompt, steps alternating between the batch sizes so that a change in the machine's load hits all of
/// them alike). What a step costs as rows are added is what bounds the server's aggregate decode speed.
/// </summary>
public static class DecodeStepScaling
{
    public static readonly int[] BatchSizes = [1, 2, 4, 8];

    public static List<DecodeStepTime> Measure(string model, int? threads, int promptTokens, int repeats, Action<string> progress)
    {
        using var loaded = LoadedModel.Load(model, new SessionSettings(IntraOpThreads: threads));
        var slots = BatchSizes.Max();
        // Slots of the model's whole context, as the server makes them (attention may cost by capacity, not only by length).
        using var decoder = new BatchedDecoder(loaded, slots, loaded.Context, maxChunk: promptTokens);
        var random = new Random(2);
        for (var slot = 0; slot < slots; slot++)
        {
            int[] prompt = [1, .. Enumerable.Range(0, promptTokens - 1).Select(_ => random.Next(3, loaded.VocabSize))];
            decoder.Prefill(slot, prompt);
        }
        var times = BatchSizes.ToDictionary(b => b, _ => new List<double>());
        for (var repeat = -1; repeat < repeats; repeat++)
        {
            foreach (var rows in BatchSizes)
            {
                var tokens = Enumerable.Range(0, rows).Select(r => 3 + r).ToArray();
                var clock = Stopwatch.StartNew();
                decoder.Decode(tokens);
                // The first round warms each batch size's binding up and is not counted.
                if (repeat >= 0) times[rows].Add(clock.Elapsed.TotalMilliseconds);
            }
        }
        var one = Stats.Median(times[1]);
        var result = BatchSizes.Select(b => new DecodeStepTime(b, Stats.Median(times[b]), Stats.Median(times[b]) / one)).ToList();
        foreach (var step in result)
            progress($"in-process decode step, batch {step.Rows}: {step.MedianMs:F1} ms ({step.RelativeToOneRow:F2}x batch 1), {step.TokensPerSecond:F1} tokens/s");
        return result;
    }
}
