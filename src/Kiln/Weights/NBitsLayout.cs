namespace Kiln.Weights;

/// <summary>
/// The two tensors of ONNX Runtime's MatMulNBits (4 bits, block 32, no zero points, so 8) made from
/// int4_sym blocks (<see cref="NBitsLayoutStep"/>): the same values w = d·(q − 8), laid out its way.
/// Parallel over chunks of blocks: a 1B-parameter model has 33 million of them.
/// </summary>
public static unsafe class NBitsLayout
{
    private const int BlocksPerChunk = 1 << 14;

    private static readonly int BlockBytes = QuantScheme.Int4Sym.BlockBytes();

    /// <summary>
    /// The nibbles of <paramref name="blocks"/> blocks, 16 bytes each: int4_sym byte i holds weights i and
    /// i + 16; MatMulNBits's byte j holds weights 2j (low nibble) and 2j + 1 (high).
    /// </summary>
    public static void Data(byte* packed, long blocks, byte* target) => ForChunks(blocks, (first, end) =>
    {
        for (var b = first; b < end; b++)
        {
            var nibbles = packed + b * BlockBytes + 2;
            var into = target + b * (QuantSchemes.BlockSize / 2);
            for (var j = 0; j < QuantSchemes.BlockSize / 2; j++)
            {
                // Weight 2j is nibble 2j of the low halves (j < 8) or of the high halves (j >= 8), and 2j + 1 the next.
                var (even, odd) = (Nibble(nibbles, 2 * j), Nibble(nibbles, 2 * j + 1));
                into[j] = (byte)(even | odd << 4);
            }
        }
    });

    /// <summary>Each block's f16 scale as f32.</summary>
    public static void Scales(byte* packed, long blocks, float* target) => ForChunks(blocks, (first, end) =>
    {
        for (var b = first; b < end; b++) target[b] = (float)*(Half*)(packed + b * BlockBytes);
    });

    // Weight i (0..31) of an int4_sym block's 16 nibble bytes.
    private static int Nibble(byte* nibbles, int i) => i < 16 ? nibbles[i] & 0xF : nibbles[i - 16] >> 4;

    private static void ForChunks(long blocks, Action<long, long> body) =>
        Parallel.For(0L, (blocks + BlocksPerChunk - 1) / BlocksPerChunk, chunk =>
            body(chunk * BlocksPerChunk, Math.Min(blocks, (chunk + 1) * BlocksPerChunk)));
}
