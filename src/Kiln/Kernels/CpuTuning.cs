using System.Runtime.Intrinsics.X86;

namespace Kiln.Kernels;

/// <summary>
/// Choices of the one-row (decode) loops over 16-bit weights that depend on the CPU, not on its instruction sets:
/// each is a measurement (docs/performance.md), and the CPU is named by CPUID's vendor and family.
/// <list type="bullet">
/// <item>A software prefetch 4 KB ahead made them faster on the Zen 5 and the earlier hosts measured, and 27-40 %
/// slower on a Zen 4 host, whose hardware prefetchers alone read more there (bf16, and f16 in its placed form:
/// 9.2-10.0 ms against 10.1-12.7 ms with the prefetch over 268 MB; whole-model decode at one thread, bf16 14.0-14.8
/// tok/s against 10.7-10.9, f16 14.3-15.2 against 11.6-11.9). f32's loop (LinearMath) keeps its prefetch everywhere:
/// there the same host decoded the 2 GB f32 model at 16.3-16.7 tok/s with it and 8.8-9.3 without, though one 268 MB
/// product alone in the kernel bench ran faster without (8.5-9.8 against 11.4-11.7 ms).</item>
/// <item>On that Zen 4 host, which runs a 512-bit instruction as two 256-bit halves, the 256-bit loop streamed bf16 rows
/// of up to 4096 weights 10-20 % faster than the 512-bit one, and the 512-bit loop longer rows 10-15 % faster.</item>
/// </list>
/// </summary>
public static class CpuTuning
{
    /// <summary>AMD's family 19h: Zen 3 and Zen 4.</summary>
    private const int AmdFamily19h = 0x19;

    private static readonly bool IsAmdFamily19h = IsAmdFamily(AmdFamily19h);

    /// <summary>Whether the one-row loops over 16-bit weights prefetch: everywhere but AMD family 19h.</summary>
    public static bool HalfPrefetches { get; } = !IsAmdFamily19h;

    /// <summary>
    /// The shortest bf16 row (in weights) the one-row product runs with 512-bit vectors where it may: 4097 on AMD
    /// family 19h (shorter rows take the 256-bit loop), 0 elsewhere.
    /// </summary>
    public static int Bf16Wide512MinimumK { get; } = IsAmdFamily19h ? 4097 : 0;

    /// <summary>Whether this CPU reports vendor AuthenticAMD and <paramref name="family"/> (base plus extended family).</summary>
    public static bool IsAmdFamily(int family) => X86Base.IsSupported && Vendor() == "AuthenticAMD" && Family() == family;

    // The 12 bytes of leaf 0 in EBX, EDX, ECX order.
    private static string Vendor()
    {
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<int> words = [ebx, edx, ecx];
        return System.Text.Encoding.ASCII.GetString(System.Runtime.InteropServices.MemoryMarshal.AsBytes(words));
    }

    // Leaf 1's family: the base family (bits 8-11), plus the extended family (bits 20-27) when the base is 0xF.
    private static int Family()
    {
        var signature = X86Base.CpuId(1, 0).Eax;
        var family = (signature >> 8) & 0xF;
        return family == 0xF ? family + ((signature >> 20) & 0xFF) : family;
    }
}
