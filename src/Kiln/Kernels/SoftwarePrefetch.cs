using System.Runtime.Intrinsics.X86;

namespace Kiln.Kernels;

/// <summary>
/// Where the one-row (decode) loops ask for weights ahead of their reads. Which CPUs gain is a matter of
/// measurement, not of instruction sets: streaming a bf16 weight from memory, a prefetch 4 KB ahead made one-row
/// products faster on the Zen 5 and the earlier hosts measured, and 27-40 % slower on a Zen 4 host, whose hardware prefetchers
/// alone read more there (f16, whose conversion leaves fewer loads in flight, stayed 6 % faster with it;
/// docs/performance.md). The CPU is named by CPUID's vendor and family.
/// </summary>
public static class SoftwarePrefetch
{
    /// <summary>AMD's family 19h: Zen 3 and Zen 4.</summary>
    private const int AmdFamily19h = 0x19;

    /// <summary>Whether the bf16 one-row loops prefetch: everywhere but AMD family 19h.</summary>
    public static bool Bf16WeightRows { get; } = !IsAmdFamily(AmdFamily19h);

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
