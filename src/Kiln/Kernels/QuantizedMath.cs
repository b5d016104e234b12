using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Kiln.Weights;

namespace Kiln.Kernels;

/// <summary>Instruction sets <see cref="QuantizedMath"/> can run on; each is callable directly, so tests run every one the machine has.</summary>
public enum QuantizedPath
{
    /// <summary>Plain integer loops, on any machine.</summary>
    Portable,

    /// <summary>AVX2 byte dot products (and FMA for the scales).</summary>
    Avx2,

    /// <summary>As <see cref="Avx2"/>, with AVX-VNNI's vpdpbusd doing a block's byte products and their sums in one instruction.</summary>
    AvxVnni,
}

/// <summary>
/// y = x·Wᵀ for float x [rows, k] and a block-quantized W [n, RowBytes(k)] (<see cref="BlockQuantizer"/>),
/// for one range of output columns so that threads can split W. As llama.cpp does, each row of x is
/// first quantized to int8 blocks of 32 with one f32 scale (<see cref="QuantizeActivations"/>), so the
/// inner loop is an integer dot product per block, scaled by the product of the two scales. The AVX2
/// paths take eight blocks per step (QuantizedMath.EightBlocks.cs), and products of several rows go through
/// integer panels (QuantizedMath.IntegerPanels.cs); figures in docs/weights.md.
/// </summary>
public static unsafe partial class QuantizedMath
{
    /// <summary>Weight rows per tile of a several-row product: they stay in cache while every input row passes by.</summary>
    public const int TileRows = 4;

    /// <summary>2^112, exactly.</summary>
    private const float TwoTo112 = 5.192296858534828e33f;

    public static QuantizedPath Best { get; } =
        IsSupported(QuantizedPath.AvxVnni) ? QuantizedPath.AvxVnni : IsSupported(QuantizedPath.Avx2) ? QuantizedPath.Avx2 : QuantizedPath.Portable;

    public static bool IsSupported(QuantizedPath path) => path switch
    {
        QuantizedPath.Portable => true,
        QuantizedPath.Avx2 => System.Runtime.Intrinsics.X86.Avx2.IsSupported && Fma.IsSupported,
        QuantizedPath.AvxVnni => System.Runtime.Intrinsics.X86.Avx2.IsSupported && Fma.IsSupported && System.Runtime.Intrinsics.X86.AvxVnni.IsSupported,
        _ => false,
    };

    /// <summary>
    /// Quantizes each row of x [rows, k] to blocks of 32 signed bytes q (zero-padded past k) with one scale
    /// d = max|x| / 127 per block: q holds rows · Blocks(k) · 32 bytes, scales and sums rows · Blocks(k) floats.
    /// Rounding is to nearest, ties to even. sums are each block's Σx of the quantized x, d·Σq (int4's minimum multiplies it).
    /// </summary>
    public static void QuantizeActivations(float* x, int rows, int k, sbyte* q, float* scales, float* sums)
    {
        var blocks = (int)QuantSchemes.Blocks(k);
        const int size = QuantSchemes.BlockSize;
        var vector = IsSupported(QuantizedPath.Avx2);
        for (var r = 0; r < rows; r++)
        {
            var xr = x + (long)r * k;
            for (var b = 0; b < blocks; b++)
            {
                var count = Math.Min(size, k - b * size);
                var from = xr + b * size;
                var to = q + ((long)r * blocks + b) * size;
                float d;
                if (vector && count == size) d = QuantizeBlock(from, to);
                else
                {
                    float max = 0;
                    for (var i = 0; i < count; i++) max = Math.Max(max, Math.Abs(from[i]));
                    d = max / 127f;
                    var inverse = d == 0 ? 0 : 1 / d;
                    for (var i = 0; i < count; i++) to[i] = (sbyte)Math.Clamp(MathF.Round(from[i] * inverse), -127f, 127f);
                    for (var i = count; i < size; i++) to[i] = 0;
                }
                scales[(long)r * blocks + b] = d;
                // Σx of the quantized x, d·Σq (an exact integer sum): int4's m·Σx term then sees the x its d·q·x term sees.
                var sum = 0;
                for (var i = 0; i < size; i++) sum += to[i];
                sums[(long)r * blocks + b] = d * sum;
            }
        }
    }

    // One whole block as the scalar steps above, eight values per vector (vroundps rounds ties to even, as
    // MathF.Round); returns d. Serial in the kernel before the product is split, so its speed counts for prefill.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float QuantizeBlock(float* from, sbyte* to)
    {
        var v0 = Vector256.Load(from);
        var v1 = Vector256.Load(from + 8);
        var v2 = Vector256.Load(from + 16);
        var v3 = Vector256.Load(from + 24);
        var m = Avx.Max(Avx.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Avx.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
        var half = Sse.Max(m.GetLower(), m.GetUpper());
        half = Sse.Max(half, Sse.Shuffle(half, half, 0b01_00_11_10));
        var max = Math.Max(half.GetElement(0), half.GetElement(1));
        var d = max / 127f;
        var inverse = Vector256.Create(d == 0 ? 0 : 1 / d);
        var (low, high) = (Vector256.Create(-127f), Vector256.Create(127f));
        var i0 = Avx.ConvertToVector256Int32WithTruncation(Avx.Min(Avx.Max(Avx.RoundToNearestInteger(Avx.Multiply(v0, inverse)), low), high));
        var i1 = Avx.ConvertToVector256Int32WithTruncation(Avx.Min(Avx.Max(Avx.RoundToNearestInteger(Avx.Multiply(v1, inverse)), low), high));
        var i2 = Avx.ConvertToVector256Int32WithTruncation(Avx.Min(Avx.Max(Avx.RoundToNearestInteger(Avx.Multiply(v2, inverse)), low), high));
        var i3 = Avx.ConvertToVector256Int32WithTruncation(Avx.Min(Avx.Max(Avx.RoundToNearestInteger(Avx.Multiply(v3, inverse)), low), high));
        // The packs work within 128-bit lanes: the dwords come out in the order 0 4 1 5 2 6 3 7.
        var bytes = System.Runtime.Intrinsics.X86.Avx2.PackSignedSaturate(System.Runtime.Intrinsics.X86.Avx2.PackSignedSaturate(i0, i1), System.Runtime.Intrinsics.X86.Avx2.PackSignedSaturate(i2, i3));
        System.Runtime.Intrinsics.X86.Avx2.PermuteVar8x32(bytes.AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsSByte().Store(to);
        return d;
    }

    /// <summary>
    /// y[r, first..end) for every row r of the quantized x (<paramref name="qx"/>, <paramref name="dx"/>, <paramref name="sx"/>
    /// from <see cref="QuantizeActivations"/>), W's packed rows <paramref name="w"/>, and y's rows <paramref name="n"/> apart.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(QuantizedPath path, QuantScheme scheme, sbyte* qx, float* dx, float* sx, byte* w, float* y, int rows, int k, int n, int first, int end)
    {
        if (!IsSupported(path)) throw new PlatformNotSupportedException($"this machine cannot run the {path} path");
        if (UsesIntegerPanels(path, scheme, rows))
        {
            MultiplyIntegerPanels(path, KernelPaths.Best, scheme, qx, dx, sx, w, y, rows, k, n, first, end);
            return;
        }
        var blocks = (int)QuantSchemes.Blocks(k);
        // Σqx per block for the products that drop the sign trick (QuantizedMath.ShiftedBlocks.cs).
        var shifted = path != QuantizedPath.Portable && ShiftedDots(path, scheme);
        var count = shifted ? (long)rows * blocks : 0;
        var onStack = count <= MaxStackSums;
        var xsums = onStack ? stackalloc int[(int)count] : new Span<int>((void*)0, 0);
        fixed (int* stack = xsums)
        {
            var sums = onStack ? stack : (int*)NativeMemory.Alloc((nuint)count, sizeof(int));
            try
            {
                if (shifted) BlockSums(qx, rows * blocks, sums);
                Multiply(path, scheme, qx, dx, sx, shifted ? sums : null, w, y, rows, blocks, n, first, end);
            }
            finally
            {
                if (!onStack) NativeMemory.Free(sums);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Multiply(QuantizedPath path, QuantScheme scheme, sbyte* qx, float* dx, float* sx, int* xsums, byte* w, float* y, int rows, int blocks, int n, int first, int end)
    {
        var rowBytes = (long)blocks * scheme.BlockBytes();
        var xStride = (long)blocks * QuantSchemes.BlockSize;
        if (rows == 1)
        {
            // The nibble schemes two blocks per vector, their activations paired once here (QuantizedMath.PairedBlocks.cs).
            if (path != QuantizedPath.Portable && (scheme == QuantScheme.Int4 || (scheme == QuantScheme.Int4Sym && xsums != null)) && xStride <= MaxPairedBytes)
            {
                var row = stackalloc sbyte[(int)xStride];
                PairActivations(qx, blocks, row);
                var vnni = path == QuantizedPath.AvxVnni;
                if (scheme == QuantScheme.Int4)
                    for (var j = first; j < end; j++) y[j] = DotPairedBlocks<Int4Blocks>(w + j * rowBytes, qx, row, dx, sx, null, blocks, vnni);
                else
                    for (var j = first; j < end; j++) y[j] = DotPairedBlocks<Int4SymShifted>(w + j * rowBytes, qx, row, dx, null, xsums, blocks, vnni);
                return;
            }
            if (xsums != null)
                for (var j = first; j < end; j++) y[j] = DotShifted(path, scheme, w + j * rowBytes, qx, dx, xsums, blocks);
            else
                for (var j = first; j < end; j++) y[j] = Dot(path, scheme, w + j * rowBytes, qx, dx, sx, blocks);
            return;
        }
        // The nibble schemes two blocks per vector, each row's activations paired once here (QuantizedMath.PairedBlocks.cs).
        sbyte* paired = null;
        if (path != QuantizedPath.Portable && rows >= 4 && (scheme == QuantScheme.Int4 || (scheme == QuantScheme.Int4Sym && xsums != null)))
        {
            paired = (sbyte*)NativeMemory.Alloc((nuint)(rows * xStride));
            for (var r = 0; r < rows; r++) PairActivations(qx + r * xStride, blocks, paired + r * xStride);
        }
        try
        {
            MultiplyRows(path, scheme, qx, paired, dx, sx, xsums, w, y, rows, blocks, n, first, end);
        }
        finally
        {
            NativeMemory.Free(paired);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyRows(QuantizedPath path, QuantScheme scheme, sbyte* qx, sbyte* paired, float* dx, float* sx, int* xsums, byte* w, float* y, int rows, int blocks, int n, int first, int end)
    {
        var rowBytes = (long)blocks * scheme.BlockBytes();
        var xStride = (long)blocks * QuantSchemes.BlockSize;
        // Weight rows outermost, a few at a time: read from memory once, reused by every input row from cache.
        for (var j0 = first; j0 < end; j0 += TileRows)
        {
            var j1 = Math.Min(j0 + TileRows, end);
            var r = 0;
            if (path != QuantizedPath.Portable)
            {
                // Four input rows per pass over a weight row: each weight block is loaded (and unpacked) once for four products.
                for (; r + 4 <= rows; r += 4)
                {
                    for (var j = j0; j < j1; j++)
                        FourRowsAvx2(scheme, w + j * rowBytes, qx + r * xStride, paired == null ? null : paired + r * xStride, xStride, dx + (long)r * blocks, sx + (long)r * blocks, xsums == null ? null : xsums + (long)r * blocks, blocks, y + (long)r * n + j, n, path == QuantizedPath.AvxVnni);
                }
            }
            for (; r < rows; r++)
            {
                for (var j = j0; j < j1; j++)
                    y[(long)r * n + j] = xsums != null
                        ? DotShifted(path, scheme, w + j * rowBytes, qx + r * xStride, dx + (long)r * blocks, xsums + (long)r * blocks, blocks)
                        : Dot(path, scheme, w + j * rowBytes, qx + r * xStride, dx + (long)r * blocks, sx + (long)r * blocks, blocks);
            }
        }
    }

    private static float Dot(QuantizedPath path, QuantScheme scheme, byte* w, sbyte* qx, float* dx, float* sx, int blocks) => (path, scheme) switch
    {
        (not QuantizedPath.Portable, QuantScheme.Int8) => DotInt8Avx2(w, qx, dx, blocks, path == QuantizedPath.AvxVnni),
        (not QuantizedPath.Portable, QuantScheme.Int4Sym) => DotInt4SymAvx2(w, qx, dx, blocks, path == QuantizedPath.AvxVnni),
        (not QuantizedPath.Portable, _) => DotInt4Avx2(w, qx, dx, sx, blocks, path == QuantizedPath.AvxVnni),
        (_, QuantScheme.Int8) => DotInt8Portable(w, qx, dx, blocks),
        (_, QuantScheme.Int4Sym) => DotInt4SymPortable(w, qx, dx, blocks),
        _ => DotInt4Portable(w, qx, dx, sx, blocks),
    };

    // The block's f16 scale as f32, branch-free: sign and the 15 other bits moved to their f32 places
    // give the value times 2^-112, exact for finite halves (subnormals included), which the multiply undoes.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Scale(byte* block)
    {
        int bits = *(ushort*)block;
        return BitConverter.Int32BitsToSingle((bits & 0x8000) << 16 | (bits & 0x7FFF) << 13) * TwoTo112;
    }

    // 16 bytes of nibbles -> 32 values q in [0, 15], in the order of Unpack.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> UnpackUnsigned(byte* packed)
    {
        var bytes = Sse2.LoadVector128(packed);
        var mask = Vector128.Create((byte)0x0F);
        return Vector256.Create(Sse2.And(bytes, mask), Sse2.And(Sse2.ShiftRightLogical(bytes.AsUInt16(), 4).AsByte(), mask));
    }

    // Σ q·x of one block with q unsigned: vpmaddubsw takes it as it is (pairs ≤ 2 · 15 · 127).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BlockDotUnsigned(Vector256<byte> q, Vector256<sbyte> x, bool vnni)
    {
        if (vnni) return Avx.ConvertToVector256Single(System.Runtime.Intrinsics.X86.AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, q, x));
        var pairs = System.Runtime.Intrinsics.X86.Avx2.MultiplyAddAdjacent(q, x);
        return Avx.ConvertToVector256Single(System.Runtime.Intrinsics.X86.Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1)));
    }

    // 16 bytes of nibbles -> 32 signed values q − 8: low nibbles are values 0..15, high nibbles 16..31.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Unpack(byte* packed)
    {
        var bytes = Sse2.LoadVector128(packed);
        var mask = Vector128.Create((byte)0x0F);
        var low = Sse2.And(bytes, mask);
        var high = Sse2.And(Sse2.ShiftRightLogical(bytes.AsUInt16(), 4).AsByte(), mask);
        return System.Runtime.Intrinsics.X86.Avx2.Subtract(Vector256.Create(low, high).AsSByte(), Vector256.Create((sbyte)8));
    }

    // Σ w·x of one block as eight int32 partial sums, converted to float. vpmaddubsw multiplies unsigned
    // by signed bytes, so the sign moves from w to x: |w| · (x·sign(w)). Pairs stay within int16, as
    // |w|, |x| ≤ 127 (2 · 127² < 2^15).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BlockDot(Vector256<sbyte> w, Vector256<sbyte> x, bool vnni)
    {
        var magnitude = System.Runtime.Intrinsics.X86.Avx2.Sign(w, w).AsByte();
        var signed = System.Runtime.Intrinsics.X86.Avx2.Sign(x, w);
        if (vnni) return Avx.ConvertToVector256Single(System.Runtime.Intrinsics.X86.AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, magnitude, signed));
        var pairs = System.Runtime.Intrinsics.X86.Avx2.MultiplyAddAdjacent(magnitude, signed);
        var quads = System.Runtime.Intrinsics.X86.Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1));
        return Avx.ConvertToVector256Single(quads);
    }

    private static float DotInt8Portable(byte* w, sbyte* qx, float* dx, int blocks)
    {
        const int bytes = 2 + QuantSchemes.BlockSize;
        var sum = 0f;
        for (var b = 0; b < blocks; b++)
        {
            var block = w + (long)b * bytes;
            var values = (sbyte*)block + 2;
            var x = qx + b * 32L;
            var dot = 0;
            for (var i = 0; i < QuantSchemes.BlockSize; i++) dot += values[i] * x[i];
            sum += dot * (Scale(block) * dx[b]);
        }
        return sum;
    }

    private static float DotInt4Portable(byte* w, sbyte* qx, float* dx, float* sx, int blocks)
    {
        const int bytes = 4 + QuantSchemes.BlockSize / 2;
        var sum = 0f;
        for (var b = 0; b < blocks; b++)
        {
            var block = w + (long)b * bytes;
            var x = qx + b * 32L;
            var dot = 0;
            for (var j = 0; j < QuantSchemes.BlockSize / 2; j++)
            {
                dot += (block[4 + j] & 0xF) * x[j];
                dot += (block[4 + j] >> 4) * x[j + 16];
            }
            sum += dot * (Scale(block) * dx[b]) + Scale(block + 2) * sx[b];
        }
        return sum;
    }

    private static float DotInt4SymPortable(byte* w, sbyte* qx, float* dx, int blocks)
    {
        const int bytes = 2 + QuantSchemes.BlockSize / 2;
        var sum = 0f;
        for (var b = 0; b < blocks; b++)
        {
            var block = w + (long)b * bytes;
            var x = qx + b * 32L;
            var dot = 0;
            for (var j = 0; j < QuantSchemes.BlockSize / 2; j++)
            {
                dot += ((block[2 + j] & 0xF) - 8) * x[j];
                dot += ((block[2 + j] >> 4) - 8) * x[j + 16];
            }
            sum += dot * (Scale(block) * dx[b]);
        }
        return sum;
    }
}
