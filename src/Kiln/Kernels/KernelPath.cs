using System.Runtime.Intrinsics.X86;

namespace Kiln.Kernels;

/// <summary>
/// The instruction sets a Kiln kernel has code for. The kernel picks <see cref="KernelPaths.Best"/> at
/// run time; tests name each path the machine supports, so the portable one is checked everywhere.
/// </summary>
public enum KernelPath
{
    /// <summary>Plain scalar loops: any machine.</summary>
    Portable,

    /// <summary>256-bit vectors with AVX2 and FMA.</summary>
    Avx2,

    /// <summary>512-bit vectors with AVX-512F and BW (16-bit weights, the float panel tile and the nibble schemes' integer panels; the rest as <see cref="Avx2"/>).</summary>
    Avx512,
}

public static class KernelPaths
{
    /// <summary>The fastest path this machine runs.</summary>
    public static KernelPath Best { get; } =
        IsSupported(KernelPath.Avx512) ? KernelPath.Avx512 : IsSupported(KernelPath.Avx2) ? KernelPath.Avx2 : KernelPath.Portable;

    public static bool IsSupported(KernelPath path) => path switch
    {
        KernelPath.Portable => true,
        KernelPath.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        KernelPath.Avx512 => Avx512F.IsSupported && Avx512BW.IsSupported && Avx2.IsSupported && Fma.IsSupported,
        _ => false,
    };
}
