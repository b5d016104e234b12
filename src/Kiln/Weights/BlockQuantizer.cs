using System.Globalization;
using Kiln.Graph;

namespace Kiln.Weights;

/// <summary>
/// Quantizes float weights [n, k] into the blocks of a <see cref="QuantScheme"/>, row by row on all
/// threads. Within a row, block b holds inputs 32b..32b+31; the last block of a row whose k is not a
/// multiple of 32 is padded with zeros, so every projection can be quantized. Layouts, as llama.cpp's:
/// <list type="bullet">
/// <item>int8 (Q8_0): d = max|w| / 127 as f16, then q = round(w / d) (halves away from zero) as 32 signed bytes.</item>
/// <item>int4_sym (Q4_0): m = the block's value of largest magnitude, d = m / −8 as f16, q = clamp(⌊w / d + 8.5⌋, 0, 15);
/// byte j holds q[j] in its low nibble and q[j + 16] in its high nibble; w ≈ d·(q − 8).</item>
/// <item>int4 (Q4_1): d = (max − min) / 15 and m = min, both f16, then q = clamp(round((w − m) / d), 0, 15)
/// (halves away from zero), nibbles packed as for int4_sym; w ≈ d·q + m.</item>
/// </list>
/// An all-zero block has d = 0 and dequantizes to zeros.
/// </summary>
public static unsafe class BlockQuantizer
{
    /// <summary>Rows per unit of work: enough to amortize scheduling, few enough to report progress often.</summary>
    private const int RowsPerChunk = 16;

    /// <summary>
    /// Quantizes <paramref name="rows"/> rows of <paramref name="k"/> elements of <paramref name="dtype"/> at
    /// <paramref name="source"/> into <paramref name="target"/> (rows · scheme.RowBytes(k) bytes).
    /// <paramref name="weightsDone"/>, when given, is called from worker threads with the count of
    /// weights each finished chunk held.
    /// </summary>
    public static void Quantize(DType dtype, void* source, long rows, long k, QuantScheme scheme, byte* target, Action<long>? weightsDone = null)
    {
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16)) throw new KilnException($"quantize: needs f32, f16 or bf16 weights, found {dtype.Name()}");
        if (k > int.MaxValue) throw new KilnException($"quantize: rows of {k} elements are beyond 2^31");
        var rowBytes = scheme.RowBytes(k);
        var width = (int)k;
        var chunks = (rows + RowsPerChunk - 1) / RowsPerChunk;
        var (from, to) = ((nint)source, (nint)target);
        try
        {
            Parallel.For(0L, chunks, () => new float[width], (chunk, _, row) =>
            {
                var end = Math.Min(rows, (chunk + 1) * RowsPerChunk);
                for (var r = chunk * RowsPerChunk; r < end; r++)
                {
                    Widen(dtype, (byte*)from + r * k * dtype.ByteSize(), row);
                    try
                    {
                        QuantizeRow(row, scheme, new Span<byte>((byte*)to + r * rowBytes, (int)rowBytes));
                    }
                    catch (KilnException e)
                    {
                        throw new KilnException($"row {r}: {e.Message}", e);
                    }
                }
                weightsDone?.Invoke((end - chunk * RowsPerChunk) * k);
                return row;
            }, _ => { });
        }
        catch (AggregateException e) when (e.InnerExceptions.FirstOrDefault(i => i is KilnException) is KilnException first)
        {
            // One bad row is the user's error to report, whichever worker found it.
            throw new KilnException(first.Message, first);
        }
    }

    /// <summary>Quantizes one row of k = <paramref name="row"/>.Length weights into <paramref name="packed"/> (RowBytes(k) bytes).</summary>
    public static void QuantizeRow(ReadOnlySpan<float> row, QuantScheme scheme, Span<byte> packed)
    {
        var blockBytes = scheme.BlockBytes();
        if (packed.Length != scheme.RowBytes(row.Length)) throw new ArgumentException($"a row of {row.Length} needs {scheme.RowBytes(row.Length)} bytes, not {packed.Length}", nameof(packed));
        Span<float> block = stackalloc float[QuantSchemes.BlockSize];
        for (var b = 0; b * QuantSchemes.BlockSize < row.Length; b++)
        {
            var start = b * QuantSchemes.BlockSize;
            var count = Math.Min(QuantSchemes.BlockSize, row.Length - start);
            block.Clear();
            row.Slice(start, count).CopyTo(block);
            var output = packed.Slice(b * blockBytes, blockBytes);
            try
            {
                switch (scheme)
                {
                    case QuantScheme.Int8: Int8Block(block, output); break;
                    case QuantScheme.Int4Sym: Int4SymBlock(block, output); break;
                    default: Int4Block(block, output); break;
                }
            }
            catch (KilnException e)
            {
                throw new KilnException($"block {b} (inputs {start}..{start + count - 1}): {e.Message}", e);
            }
        }
    }

    /// <summary>
    /// The weights of <paramref name="rows"/> packed rows at <paramref name="packed"/>, each of <paramref name="k"/>
    /// (a multiple of 32) weights, into <paramref name="target"/> (rows · k floats), row by row on all threads.
    /// </summary>
    public static void Dequantize(byte* packed, long rows, long k, QuantScheme scheme, float* target)
    {
        if (k % QuantSchemes.BlockSize != 0 || k > int.MaxValue) throw new ArgumentException($"rows of {k} are not whole blocks", nameof(k));
        var rowBytes = scheme.RowBytes(k);
        var (from, to) = ((nint)packed, (nint)target);
        Parallel.For(0L, (rows + RowsPerChunk - 1) / RowsPerChunk, chunk =>
        {
            for (var r = chunk * RowsPerChunk; r < Math.Min(rows, (chunk + 1) * RowsPerChunk); r++)
            {
                DequantizeRow(new ReadOnlySpan<byte>((byte*)from + r * rowBytes, (int)rowBytes), scheme, new Span<float>((float*)to + r * k, (int)k));
            }
        });
    }

    /// <summary>The weights a packed row stands for (k = <paramref name="row"/>.Length; the padding is dropped).</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> packed, QuantScheme scheme, Span<float> row)
    {
        var blockBytes = scheme.BlockBytes();
        // int4 (Q4_1) stores a minimum after the scale, so its nibbles start two bytes later.
        var values = scheme == QuantScheme.Int4 ? 4 : 2;
        for (var start = 0; start < row.Length; start += QuantSchemes.BlockSize)
        {
            var block = packed.Slice(start / QuantSchemes.BlockSize * blockBytes, blockBytes);
            var d = (float)BitConverter.UInt16BitsToHalf((ushort)(block[0] | block[1] << 8));
            var m = scheme == QuantScheme.Int4 ? (float)BitConverter.UInt16BitsToHalf((ushort)(block[2] | block[3] << 8)) : 0f;
            var count = Math.Min(QuantSchemes.BlockSize, row.Length - start);
            for (var j = 0; j < count; j++)
            {
                var nibble = j < 16 ? block[values + j] & 0xF : block[values + j - 16] >> 4;
                row[start + j] = scheme switch
                {
                    QuantScheme.Int8 => d * (sbyte)block[2 + j],
                    QuantScheme.Int4Sym => d * (nibble - 8),
                    _ => d * nibble + m,
                };
            }
        }
    }

    private static void Int8Block(ReadOnlySpan<float> block, Span<byte> output)
    {
        var max = 0f;
        foreach (var w in block) max = Math.Max(max, Math.Abs(w));
        var d = Scale(max / 127f, max);
        WriteScale(d, output);
        for (var i = 0; i < block.Length; i++)
        {
            var q = d == 0 ? 0 : Math.Clamp(MathF.Round(block[i] / d, MidpointRounding.AwayFromZero), -127f, 127f);
            output[2 + i] = (byte)(sbyte)q;
        }
    }

    private static void Int4SymBlock(ReadOnlySpan<float> block, Span<byte> output)
    {
        // Signed extreme mapped to −8, so the larger side of the block gets the full 16 levels.
        var extreme = 0f;
        foreach (var w in block) if (Math.Abs(w) > Math.Abs(extreme)) extreme = w;
        var d = Scale(extreme / -8f, Math.Abs(extreme));
        WriteScale(d, output);
        Span<int> q = stackalloc int[QuantSchemes.BlockSize];
        for (var i = 0; i < block.Length; i++) q[i] = d == 0 ? 8 : (int)Math.Clamp(MathF.Floor(block[i] / d + 8.5f), 0f, 15f);
        for (var j = 0; j < QuantSchemes.BlockSize / 2; j++) output[2 + j] = (byte)(q[j] | q[j + 16] << 4);
    }

    private static void Int4Block(ReadOnlySpan<float> block, Span<byte> output)
    {
        float min = block[0], max = block[0];
        foreach (var w in block) (min, max) = (Math.Min(min, w), Math.Max(max, w));
        var d = Scale((max - min) / 15, Math.Max(Math.Abs(min), Math.Abs(max)));
        var m = Scale(min, Math.Abs(min));
        WriteScale(d, output);
        WriteScale(m, output[2..]);
        Span<int> q = stackalloc int[QuantSchemes.BlockSize];
        for (var i = 0; i < block.Length; i++) q[i] = d == 0 ? 0 : (int)Math.Clamp(MathF.Round((block[i] - m) / d, MidpointRounding.AwayFromZero), 0f, 15f);
        for (var j = 0; j < QuantSchemes.BlockSize / 2; j++) output[4 + j] = (byte)(q[j] | q[j + 16] << 4);
    }

    // The f16 scale, as the kernel will read it; values are quantized against this rounded scale.
    private static float Scale(float exact, float magnitude)
    {
        if (!float.IsFinite(magnitude)) throw new KilnException($"weight {magnitude.ToString(CultureInfo.InvariantCulture)} is not finite");
        // +0 for an all-zero block (not the −0 that −0 / −8 gives).
        var d = exact == 0 ? 0 : (float)(Half)exact;
        if (float.IsInfinity(d)) throw new KilnException($"weight magnitude {magnitude.ToString(CultureInfo.InvariantCulture)} needs a block scale beyond f16's range");
        return d;
    }

    private static void WriteScale(float d, Span<byte> output)
    {
        var bits = BitConverter.HalfToUInt16Bits((Half)d);
        output[0] = (byte)bits;
        output[1] = (byte)(bits >> 8);
    }

    private static void Widen(DType dtype, byte* source, Span<float> row)
    {
        switch (dtype)
        {
            case DType.F32: new ReadOnlySpan<float>(source, row.Length).CopyTo(row); break;
            case DType.F16: FloatConversion.HalfToSingle(new ReadOnlySpan<Half>(source, row.Length), row); break;
            default: FloatConversion.BFloat16ToSingle(new ReadOnlySpan<ushort>(source, row.Length), row); break;
        }
    }
}
