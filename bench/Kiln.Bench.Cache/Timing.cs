namespace Kiln.Bench.Cache;

/// <summary>Medians of repeated timings, with the spread (min..max) reported as the noise.</summary>
internal sealed record Timing(double MedianMs, double MinMs, double MaxMs, IReadOnlyList<double> SamplesMs)
{
    public static Timing Of(IReadOnlyList<double> samples)
    {
        var sorted = samples.Order().ToList();
        var middle = sorted.Count / 2;
        var median = sorted.Count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
        return new Timing(median, sorted[0], sorted[^1], samples);
    }

    public override string ToString() => $"{MedianMs:F0} ({MinMs:F0}..{MaxMs:F0})";
}
