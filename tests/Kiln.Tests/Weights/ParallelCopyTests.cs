using Kiln.Weights;

namespace Kiln.Tests.Weights;

/// <summary>Copies split over the cores land exactly where a plain copy puts them, for pieces of any size, and nothing else is written.</summary>
public sealed unsafe class ParallelCopyTests
{
    [Theory]
    [InlineData(1, 7)]                    // one small copy: on the calling thread
    [InlineData(3, (5 << 20) + 13)]       // a fused projection's members: each split into 2 MiB pieces, the last one short
    [InlineData(4096, 11264)]             // column blocks: many small copies, run in groups
    public void Every_byte_lands_where_a_plain_copy_puts_it(int copies, int bytesEach)
    {
        var source = new byte[(long)copies * bytesEach];
        new Random(copies).NextBytes(source);
        // Into every other slot of a target twice as long, back to front: the gaps must stay untouched.
        var target = new byte[source.Length * 2L];
        Array.Fill(target, (byte)0xA5);
        fixed (byte* from = source)
        fixed (byte* to = target)
        {
            var (start, end) = ((nint)from, (nint)to);
            var ranges = Enumerable.Range(0, copies)
                .Select(i => new ParallelCopy.Range(start + (nint)((long)i * bytesEach), end + (nint)((long)(copies - 1 - i) * 2 * bytesEach), bytesEach))
                .ToList();
            ParallelCopy.Run(ranges);
        }

        for (var i = 0; i < copies; i++)
        {
            var slot = (long)(copies - 1 - i) * 2 * bytesEach;
            Assert.True(source.AsSpan(i * bytesEach, bytesEach).SequenceEqual(target.AsSpan((int)slot, bytesEach)), $"copy {i} differs");
            Assert.True(target.AsSpan((int)slot + bytesEach, bytesEach).IndexOfAnyExcept((byte)0xA5) < 0, $"the gap after copy {i} was written");
        }
    }
}
