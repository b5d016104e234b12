using Kiln.Benchmarks;

namespace Kiln.Tests.Benchmarks;

public sealed class ReadBandwidthProbeTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Reads_every_word_of_the_buffer_and_reports_a_positive_rate(int threads)
    {
        // An odd word count: the last thread's slice and the vector loop's tail are both uneven.
        const long words = (8L << 20) / sizeof(ulong) + 13;

        var result = ReadBandwidthProbe.Measure(threads, words * sizeof(ulong), passes: 2);

        Assert.Equal(unchecked((ulong)words * (ulong)(words - 1) / 2), result.Checksum);
        Assert.Equal(words * sizeof(ulong), result.BufferBytes);
        Assert.True(result.BytesPerSecond > 0);
        Assert.Equal((threads, 2), (result.Threads, result.Passes));
    }

    [Fact]
    public void One_buffer_is_measured_again_and_again_and_refused_once_disposed()
    {
        const long words = (4L << 20) / sizeof(ulong);
        var probe = new ReadBandwidthProbe(words * sizeof(ulong));
        var first = probe.Measure(threads: 2, passes: 1);
        var second = probe.Measure(threads: 1, passes: 1);
        Assert.Equal(unchecked((ulong)words * (ulong)(words - 1) / 2), first.Checksum);
        Assert.Equal(first.Checksum, second.Checksum);
        probe.Dispose();
        Assert.Throws<ObjectDisposedException>(() => probe.Measure(threads: 1));
    }
}
