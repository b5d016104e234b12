using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Kiln.Graph;
using Kiln.Kernels;
using Kiln.Weights;

// In-process microbenchmark of the f32, 16-bit and quantized Linear kernels (bench/README.md): one product
// y = x·Wᵀ over all n output columns on the calling thread, as one part of ai.kiln.Linear /
// ai.kiln.LinearInt* computes it (quantized: the activations quantized first where the kernel does).
// Every variant (format × path) is warmed up, then the variants run in turn, round after round, so that
// a shared machine's changing load falls on all of them alike. Prints, per variant, the best and median
// of the calling thread's CPU time (wall time on a shared machine mostly measures the other processes),
// the GFLOP/s (2·rows·n·k) of the best, and the best wall time.
var options = Args.Parse(args);
Console.WriteLine($"rows {options.Rows}, n {options.N}, k {options.K}, {(options.Gaussian ? "Gaussian" : "uniform")} weights, rounds {options.Repeats}, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
var random = new Random(1);
var x = GC.AllocateArray<float>(options.Rows * options.K, pinned: true);
for (var i = 0; i < x.Length; i++) x[i] = (float)(random.NextDouble() * 2 - 1);
var w = new float[(long)options.N * options.K];
for (var i = 0L; i < w.Length; i++) w[i] = options.Gaussian
    ? (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()) * 0.02)
    : (float)((random.NextDouble() * 2 - 1) * 0.05);
var y = GC.AllocateArray<float>(options.Rows * options.N, pinned: true);
var variants = new List<(string Name, Action Product)>();
unsafe
{
    var (px, py) = ((nint)Unsafe.AsPointer(ref x[0]), (nint)Unsafe.AsPointer(ref y[0]));
    var (rows, n, k) = (options.Rows, options.N, options.K);
    foreach (var format in options.Formats)
    {
        if (format is "bf16" or "f16")
        {
            var h = (nint)NativeMemory.AlignedAlloc((nuint)(w.LongLength * 2), 64);
            for (var i = 0L; i < w.Length; i++)
                ((ushort*)h)[i] = format == "bf16" ? (ushort)(BitConverter.SingleToUInt32Bits(w[i]) >> 16) : BitConverter.HalfToUInt16Bits((Half)w[i]);
            foreach (var path in Enum.GetValues<KernelPath>().Where(p => p != KernelPath.Portable && KernelPaths.IsSupported(p)))
            {
                variants.Add(($"{format} {path}", format == "bf16"
                    ? () => HalfLinearMath<BFloat16Weights>.Multiply((float*)px, (ushort*)h, (float*)py, rows, k, n, 0, n, path)
                    : () => HalfLinearMath<HalfWeights>.Multiply((float*)px, (ushort*)h, (float*)py, rows, k, n, 0, n, path)));
            }
            continue;
        }
        if (format == "f32")
        {
            var f = (nint)NativeMemory.AlignedAlloc((nuint)(w.LongLength * 4), 64);
            for (var i = 0L; i < w.Length; i++) ((float*)f)[i] = w[i];
            foreach (var path in Enum.GetValues<KernelPath>().Where(p => p != KernelPath.Portable && KernelPaths.IsSupported(p)))
                variants.Add(($"f32 {path}", () => LinearMath.Multiply(path, (float*)px, (float*)f, (float*)py, rows, k, n, 0, n)));
            continue;
        }
        if (!QuantSchemes.TryParse(format, out var scheme)) throw new ArgumentException($"unknown format {format}");
        var packed = (nint)NativeMemory.AlignedAlloc((nuint)(n * scheme.RowBytes(k)), 64);
        fixed (float* pw = w) BlockQuantizer.Quantize(DType.F32, pw, n, k, scheme, (byte*)packed);
        foreach (var path in Enum.GetValues<QuantizedPath>().Where(p => p != QuantizedPath.Portable && QuantizedMath.IsSupported(p)))
        {
            variants.Add(($"{format} {path}", () => QuantizedProduct((float*)px, (byte*)packed, (float*)py, path, KernelPath.Avx2, scheme, options, integerPanels: false)));
            // int8's integer panels: 256-bit vpdpbusd with VNNI, else signed on the 512-bit tile.
            foreach (var tile in Enum.GetValues<KernelPath>().Where(p => p != KernelPath.Portable && KernelPaths.IsSupported(p)
                && (scheme != QuantScheme.Int8 || (path == QuantizedPath.AvxVnni ? p == KernelPath.Avx2 : p == KernelPath.Avx512))))
                variants.Add(($"{format} ipanels{path}{tile}", () => QuantizedProduct((float*)px, (byte*)packed, (float*)py, path, tile, scheme, options, integerPanels: true)));
        }
        foreach (var tile in Enum.GetValues<KernelPath>().Where(p => p != KernelPath.Portable && KernelPaths.IsSupported(p)))
            variants.Add(($"{format} panels{tile}", () => QuantizedMath.MultiplyPanels(tile, scheme, (float*)px, (byte*)packed, (float*)py, rows, k, n, 0, n)));
    }
}
// Warm up for half a second each, so that every method has left tier 0 (tiered compilation).
foreach (var (_, product) in variants)
    for (var warm = Stopwatch.StartNew(); warm.ElapsedMilliseconds < 500;) product();
var cpu = variants.Select(_ => new double[options.Repeats]).ToArray();
var wall = variants.Select(_ => new double[options.Repeats]).ToArray();
for (var round = 0; round < options.Repeats; round++)
{
    for (var v = 0; v < variants.Count; v++)
    {
        var clock = Stopwatch.StartNew();
        var start = ThreadCpu.Milliseconds();
        variants[v].Product();
        cpu[v][round] = ThreadCpu.Milliseconds() - start;
        wall[v][round] = clock.Elapsed.TotalMilliseconds;
    }
}
var flops = 2.0 * options.Rows * options.N * options.K;
for (var v = 0; v < variants.Count; v++)
{
    Array.Sort(cpu[v]);
    Array.Sort(wall[v]);
    Console.WriteLine($"{variants[v].Name,-22} cpu best {cpu[v][0],8:F2} ms  median {cpu[v][options.Repeats / 2],8:F2} ms  {flops / cpu[v][0] / 1e6,6:F1} GFLOP/s  wall best {wall[v][0],8:F2} ms");
}

static unsafe void QuantizedProduct(float* x, byte* w, float* y, QuantizedPath path, KernelPath tile, QuantScheme scheme, Args options, bool integerPanels)
{
    var blocks = QuantSchemes.Blocks(options.K);
    var qx = (sbyte*)NativeMemory.AlignedAlloc((nuint)(options.Rows * blocks * QuantSchemes.BlockSize), 64);
    var dx = (float*)NativeMemory.AlignedAlloc((nuint)(2 * options.Rows * blocks * sizeof(float)), 64);
    QuantizedMath.QuantizeActivations(x, options.Rows, options.K, qx, dx, dx + options.Rows * blocks);
    if (integerPanels) QuantizedMath.MultiplyIntegerPanels(path, tile, scheme, qx, dx, dx + options.Rows * blocks, w, y, options.Rows, options.K, options.N, 0, options.N);
    else QuantizedMath.Multiply(path, scheme, qx, dx, dx + options.Rows * blocks, w, y, options.Rows, options.K, options.N, 0, options.N);
    NativeMemory.AlignedFree(qx);
    NativeMemory.AlignedFree(dx);
}

internal static partial class ThreadCpu
{
    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds, Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    public static double Milliseconds()
    {
        const int threadCpuTime = 3; // CLOCK_THREAD_CPUTIME_ID
        ClockGetTime(threadCpuTime, out var t);
        return t.Seconds * 1e3 + t.Nanoseconds / 1e6;
    }
}

// Weights uniform in ±0.05, or with --weights gaussian normal with std 0.02 (like trained weights: 0.24 % of them f16 subnormals).
internal sealed record Args(int Rows, int N, int K, int Repeats, string[] Formats, bool Gaussian)
{
    public static Args Parse(string[] args)
    {
        var (rows, n, k, repeats, formats, gaussian) = (32, 5632, 2048, 7, "f32,bf16,f16,int8,int4,int4_sym", false);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--rows": rows = int.Parse(args[i + 1]); break;
                case "--n": n = int.Parse(args[i + 1]); break;
                case "--k": k = int.Parse(args[i + 1]); break;
                case "--rounds": repeats = int.Parse(args[i + 1]); break;
                case "--formats": formats = args[i + 1]; break;
                case "--weights":
                    gaussian = args[i + 1] switch { "gaussian" => true, "uniform" => false, _ => throw new ArgumentException("--weights: uniform or gaussian") };
                    break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        return new Args(rows, n, k, repeats, formats.Split(','), gaussian);
    }
}
