using Kiln.Kernels;
using Xunit;

namespace Kiln.Tests.Kernels;

public sealed class CpuTuningTests
{
    // CPUID's vendor and family against what the Linux kernel reports for the first CPU in /proc/cpuinfo.
    [Fact]
    public void The_cpu_family_is_the_one_the_kernel_reports()
    {
        if (!OperatingSystem.IsLinux() || !System.Runtime.Intrinsics.X86.X86Base.IsSupported) return;
        var fields = File.ReadLines("/proc/cpuinfo")
            .TakeWhile(line => line.Length > 0)
            .Select(line => line.Split(':', 2))
            .Where(parts => parts.Length == 2)
            .ToDictionary(parts => parts[0].Trim(), parts => parts[1].Trim());
        var amd = fields["vendor_id"] == "AuthenticAMD";
        var family = int.Parse(fields["cpu family"]);

        Assert.Equal(amd, CpuTuning.IsAmdFamily(family));
        Assert.False(CpuTuning.IsAmdFamily(family + 1));
        var zen4 = amd && family == 0x19;
        Assert.Equal(!zen4, CpuTuning.HalfPrefetches);
        Assert.Equal(zen4 ? 4097 : 0, CpuTuning.Bf16Wide512MinimumK);
    }
}
