using System.Diagnostics;
using System.Runtime.InteropServices;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Kernels;
using Kiln.Weights;
using Microsoft.ML.OnnxRuntime;

// Kiln's quantized Linear kernel against ONNX Runtime's MatMulNBits on the same weights (bench/README.md):
// two one-node sessions per format, y = x·Wᵀ with W [n, k] quantized by Kiln (int4_sym or int8 blocks),
// MatMulNBits over the same values re-laid its way (4 or 8 bits, block 32, int8 activations: accuracy_level 4,
// pre-packed). For each row count the sessions run in turn for R rounds after a warm-up; it prints the median
// and best wall time of each, the weight bytes per second of Kiln's one-row product, and MatMulNBits / Kiln.
var options = Options.Parse(args);
Console.WriteLine($"n {options.N}, k {options.K}, threads {options.Threads}, rounds {options.Rounds}, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
var random = new Random(1);
var weights = new float[(long)options.N * options.K];
for (var i = 0L; i < weights.Length; i++) weights[i] = (float)((random.NextDouble() * 2 - 1) * 0.05);
foreach (var format in options.Formats)
{
    var scheme = format switch
    {
        "int4_sym" => QuantScheme.Int4Sym,
        "int8" => QuantScheme.Int8,
        _ => throw new ArgumentException($"--formats: int4_sym or int8, not {format}"),
    };
    using var pair = SessionPair.Create(scheme, weights, options);
    foreach (var rows in options.Rows)
    {
        var x = new float[rows * options.K];
        for (var i = 0; i < x.Length; i++) x[i] = (float)(random.NextDouble() * 2 - 1);
        for (var warm = Stopwatch.StartNew(); warm.ElapsedMilliseconds < 500;)
        {
            pair.Kiln.Run(x, rows);
            pair.NBits.Run(x, rows);
        }
        var (kiln, nbits) = (new List<double>(), new List<double>());
        var difference = 0f;
        for (var round = 0; round < options.Rounds; round++)
        {
            var (a, kilnMs) = pair.Kiln.Run(x, rows);
            var (b, nbitsMs) = pair.NBits.Run(x, rows);
            kiln.Add(kilnMs);
            nbits.Add(nbitsMs);
            difference = Math.Max(difference, a.Zip(b, (p, q) => Math.Abs(p - q)).Max());
        }
        kiln.Sort();
        nbits.Sort();
        var (kilnMedian, nbitsMedian) = (kiln[kiln.Count / 2], nbits[nbits.Count / 2]);
        var bytes = (double)options.N * scheme.RowBytes(options.K);
        Console.WriteLine($"{format,-8} rows {rows,3}: kiln median {kilnMedian,8:F3} ms (best {kiln[0]:F3}, {bytes / kilnMedian / 1e6,5:F1} GB/s of blocks)  " +
            $"MatMulNBits median {nbitsMedian,8:F3} ms (best {nbits[0]:F3})  MatMulNBits / kiln speed {kilnMedian / nbitsMedian:F2}x  max |difference| {difference:E1}");
    }
}

/// <summary>A one-node session over a weight in native memory, and how long a run takes.</summary>
internal sealed class ProductSession(CompiledSession session, List<nint> memory) : IDisposable
{
    public unsafe (float[] Y, double Ms) Run(float[] x, int rows)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(x, [rows, x.Length / rows]);
        using var runOptions = new RunOptions();
        var clock = Stopwatch.StartNew();
        using var outputs = session.Session.Run(runOptions, ["x"], [input], [session.Session.OutputNames[0]]);
        var ms = clock.Elapsed.TotalMilliseconds;
        return (outputs[0].GetTensorDataAsSpan<float>().ToArray(), ms);
    }

    public static unsafe ProductSession Create(string opType, string domain, IReadOnlyList<(string Name, DType DType, long[] Shape, nint Data, long Bytes)> inputs,
        IReadOnlyDictionary<string, object>? attributes, int k, int n, int threads)
    {
        var builder = new OnnxGraphBuilder();
        builder.AddInput("x", DType.F32, [OnnxDim.Symbolic("rows"), OnnxDim.Fixed(k)]);
        foreach (var input in inputs) builder.AddExternalInitializer(input.Name, input.DType, input.Shape);
        var y = builder.AddNode(opType, ["x", .. inputs.Select(i => i.Name)], attributes, domain);
        builder.AddOutput(y, DType.F32, [OnnxDim.Symbolic("rows"), OnnxDim.Fixed(n)]);
        var session = CompiledSession.Create(builder.ToBytes(), [.. inputs.Select(i => new ExternalInitializer(i.Name, i.DType, i.Shape, i.Data, i.Bytes))],
            new SessionSettings(IntraOpThreads: threads, Prepacking: true));
        return new ProductSession(session, [.. inputs.Select(i => i.Data)]);
    }

    public unsafe void Dispose()
    {
        session.Dispose();
        foreach (var pointer in memory) NativeMemory.AlignedFree((void*)pointer);
    }
}

/// <summary>Kiln's kernel and MatMulNBits over the same quantized weight.</summary>
internal sealed record SessionPair(ProductSession Kiln, ProductSession NBits) : IDisposable
{
    public static unsafe SessionPair Create(QuantScheme scheme, float[] weights, Options options)
    {
        var (n, k) = (options.N, options.K);
        var blocks = QuantSchemes.Blocks(k);
        var rowBytes = scheme.RowBytes(k);
        var packed = (byte*)NativeMemory.AlignedAlloc((nuint)(n * rowBytes), 64);
        fixed (float* w = weights) BlockQuantizer.Quantize(DType.F32, w, n, k, scheme, packed);
        var kiln = ProductSession.Create(QuantizedLinearKernel.OpType(scheme), OnnxGraphBuilder.KilnDomain,
            [("w", DType.U8, [n, rowBytes], (nint)packed, n * rowBytes)], null, k, n, options.Threads);

        // MatMulNBits's layout: int4_sym through Kiln's own recipe step; int8 as unsigned bytes q + 128 (its zero point).
        var bits = scheme == QuantScheme.Int8 ? 8 : 4;
        var blob = QuantSchemes.BlockSize * bits / 8;
        var data = (byte*)NativeMemory.AlignedAlloc((nuint)(n * blocks * blob), 64);
        var scales = (float*)NativeMemory.AlignedAlloc((nuint)(n * blocks * sizeof(float)), 64);
        if (scheme == QuantScheme.Int4Sym)
        {
            NBitsLayout.Data(packed, n * blocks, data);
            NBitsLayout.Scales(packed, n * blocks, scales);
        }
        else
        {
            for (long b = 0; b < n * blocks; b++)
            {
                var block = packed + b * scheme.BlockBytes();
                scales[b] = (float)*(Half*)block;
                for (var i = 0; i < QuantSchemes.BlockSize; i++) data[b * blob + i] = (byte)((sbyte)block[2 + i] + 128);
            }
        }
        var nbits = ProductSession.Create("MatMulNBits", OnnxGraphBuilder.MicrosoftDomain,
            [("data", DType.U8, [n, blocks, blob], (nint)data, n * blocks * blob), ("scales", DType.F32, [n, blocks], (nint)scales, n * blocks * sizeof(float))],
            new Dictionary<string, object> { ["K"] = (long)k, ["N"] = (long)n, ["bits"] = (long)bits, ["block_size"] = (long)QuantSchemes.BlockSize, ["accuracy_level"] = 4L },
            k, n, options.Threads);
        return new SessionPair(kiln, nbits);
    }

    public void Dispose()
    {
        Kiln.Dispose();
        NBits.Dispose();
    }
}

internal sealed record Options(int N, int K, int[] Rows, int Threads, int Rounds, string[] Formats)
{
    public static Options Parse(string[] args)
    {
        var options = new Options(5632, 2048, [1, 32], 2, 21, ["int4_sym", "int8"]);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            var value = args[i + 1];
            options = args[i] switch
            {
                "--n" => options with { N = int.Parse(value) },
                "--k" => options with { K = int.Parse(value) },
                "--rows" => options with { Rows = [.. value.Split(',').Select(int.Parse)] },
                "--threads" => options with { Threads = int.Parse(value) },
                "--rounds" => options with { Rounds = int.Parse(value) },
                "--formats" => options with { Formats = value.Split(',') },
                _ => throw new ArgumentException($"unknown option {args[i]}; see bench/README.md"),
            };
        }
        return options;
    }
}
