using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Kiln.Weights;

namespace Kiln.Kernels;

/// <summary>
/// One-row products of signed weights without the sign trick. vpmaddubsw and vpdpbusd multiply unsigned
/// by signed bytes, so signed values q need two vpsignb per block (<see cref="BlockDot"/>). Adding a
/// constant c makes them unsigned instead: Σq·qx = Σ(q + c)·qx − c·Σqx, and Σqx per block is computed
/// once per call, its term one vector FMA per eight blocks (per row, in the several-row products). int8 takes c = 128 (an XOR of the sign bit)
/// and needs vpdpbusd, as vpmaddubsw's int16 pairs would overflow (2 · 255 · 127); int4_sym takes c = 8,
/// which is its nibbles as stored.
/// </summary>
public static unsafe partial class QuantizedMath
{
    /// <summary>Most Σqx (rows · blocks) kept on the stack (32 KB); more are allocated.</summary>
    private const int MaxStackSums = 8192;

    private static bool ShiftedDots(QuantizedPath path, QuantScheme scheme) =>
        scheme == QuantScheme.Int4Sym || (scheme == QuantScheme.Int8 && path == QuantizedPath.AvxVnni);

    // Σqx of each block of one quantized row.
    private static void BlockSums(sbyte* qx, int blocks, int* xsums)
    {
        for (var b = 0; b < blocks; b++)
        {
            var x = qx + b * 32L;
            var sum = 0;
            for (var i = 0; i < QuantSchemes.BlockSize; i++) sum += x[i];
            xsums[b] = sum;
        }
    }

    private static float DotShifted(QuantizedPath path, QuantScheme scheme, byte* w, sbyte* qx, float* dx, int* xsums, int blocks) => scheme == QuantScheme.Int8
        ? DotEightBlocks<Int8Shifted>(w, qx, dx, null, xsums, blocks, vnni: true)
        : DotEightBlocks<Int4SymShifted>(w, qx, dx, null, xsums, blocks, path == QuantizedPath.AvxVnni);

    private readonly struct Int8Shifted : IBlocks
    {
        public static int Shift => 128;
        public static int Bytes => 2 + QuantSchemes.BlockSize;
        public static bool HasMinimum => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Values(byte* block) => Avx2.Xor(Avx.LoadVector256(block + 2), Vector256.Create((byte)0x80));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Dot(Vector256<byte> q, sbyte* x, bool vnni) =>
            Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, q, Avx.LoadVector256(x)));
    }

    private readonly struct Int4SymShifted : IBlocks
    {
        public static int Shift => 8;
        public static int Bytes => 2 + QuantSchemes.BlockSize / 2;
        public static bool HasMinimum => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Values(byte* block) => UnpackUnsigned(block + 2);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Dot(Vector256<byte> q, sbyte* x, bool vnni) => BlockDotUnsigned(q, Avx.LoadVector256(x), vnni);
    }
}
