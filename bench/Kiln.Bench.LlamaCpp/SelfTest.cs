using System.Runtime.InteropServices;

namespace Kiln.Bench.LlamaCpp;

/// <summary>
/// `selftest`: checks of this program's GGUF code that need neither llama.cpp nor kiln. (1) The Q/K row
/// permutation turns HF's rotary embedding into llama.cpp's: for random projections and inputs,
/// llama.cpp's adjacent-pair rotation of the permuted projection's output equals the permuted HF
/// rotate-half rotation of the original's, so every attention score q·k is unchanged. (2) A GGUF written
/// by <see cref="GgufWriter"/> reads back with the same metadata, tensor infos and bytes.
/// </summary>
internal static class SelfTest
{
    public static int Run()
    {
        var failures = 0;
        failures += Check("rotary: permuted rows + adjacent-pair rope == permuted (HF rotate-half rope)", RotaryEquivalence());
        failures += Check("GGUF: write then read back", RoundTrip());
        Console.WriteLine(failures == 0 ? "selftest: all passed" : $"selftest: {failures} failed");
        return failures == 0 ? 0 : 1;
    }

    private static int Check(string name, string? error)
    {
        Console.WriteLine(error is null ? $"  ok    {name}" : $"  FAIL  {name}: {error}");
        return error is null ? 0 : 1;
    }

    private static string? RotaryEquivalence()
    {
        var random = new Random(1);
        foreach (var (heads, headDim, inFeatures) in new[] { (4, 64, 48), (2, 8, 16), (3, 128, 8) })
        {
            var rows = heads * headDim;
            var w = Enumerable.Range(0, rows * inFeatures).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            var x = Enumerable.Range(0, inFeatures).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            var permuted = HfToGguf.PermuteRotary(w, heads, headDim);
            foreach (var position in new[] { 0, 1, 7, 300 })
            {
                var hf = MatVec(w, x, rows);
                var ll = MatVec(permuted, x, rows);
                for (var h = 0; h < heads; h++)
                {
                    RopeRotateHalf(hf.AsSpan(h * headDim, headDim), position);
                    RopeAdjacentPairs(ll.AsSpan(h * headDim, headDim), position);
                }
                var expected = HfToGguf.PermuteRotary(hf, heads, headDim);
                for (var i = 0; i < rows; i++)
                {
                    if (Math.Abs(expected[i] - ll[i]) > 1e-4f * (1 + Math.Abs(expected[i])))
                        return $"heads {heads}, head_dim {headDim}, position {position}, row {i}: {ll[i]} vs {expected[i]}";
                }
            }
            // The check must be able to fail: the unpermuted rows, rotated in adjacent pairs, do not match.
            var wrong = MatVec(w, x, rows);
            var right = MatVec(w, x, rows);
            for (var h = 0; h < heads; h++)
            {
                RopeAdjacentPairs(wrong.AsSpan(h * headDim, headDim), 7);
                RopeRotateHalf(right.AsSpan(h * headDim, headDim), 7);
            }
            var rightPermuted = HfToGguf.PermuteRotary(right, heads, headDim);
            if (wrong.Zip(rightPermuted).All(p => Math.Abs(p.First - p.Second) <= 1e-4f * (1 + Math.Abs(p.Second))))
                return $"heads {heads}, head_dim {headDim}: the unpermuted rows passed too";
        }
        return null;
    }

    private static float[] MatVec(float[] w, float[] x, int rows)
    {
        var y = new float[rows];
        for (var r = 0; r < rows; r++)
        {
            double sum = 0;
            for (var c = 0; c < x.Length; c++) sum += w[r * x.Length + c] * x[c];
            y[r] = (float)sum;
        }
        return y;
    }

    private static double Theta(int position, int i, int headDim) => position * Math.Pow(10000, -2.0 * i / headDim);

    // transformers' LlamaRotaryEmbedding with rotate_half: dims i and i + d/2 rotate together.
    private static void RopeRotateHalf(Span<float> v, int position)
    {
        var half = v.Length / 2;
        for (var i = 0; i < half; i++)
        {
            var (c, s) = (Math.Cos(Theta(position, i, v.Length)), Math.Sin(Theta(position, i, v.Length)));
            var (a, b) = (v[i], v[i + half]);
            v[i] = (float)(a * c - b * s);
            v[i + half] = (float)(b * c + a * s);
        }
    }

    // ggml's rope of the LLAMA (NORM) type: dims 2i and 2i + 1 rotate together.
    private static void RopeAdjacentPairs(Span<float> v, int position)
    {
        for (var i = 0; i < v.Length / 2; i++)
        {
            var (c, s) = (Math.Cos(Theta(position, i, v.Length)), Math.Sin(Theta(position, i, v.Length)));
            var (a, b) = (v[2 * i], v[2 * i + 1]);
            v[2 * i] = (float)(a * c - b * s);
            v[2 * i + 1] = (float)(b * c + a * s);
        }
    }

    private static string? RoundTrip()
    {
        var path = Path.Combine(Path.GetTempPath(), $"kiln-gguf-selftest-{Environment.ProcessId}.gguf");
        try
        {
            var metadata = new List<KeyValuePair<string, GgufValue>>
            {
                new("general.architecture", GgufValue.Str("llama")),
                new("llama.block_count", GgufValue.U32(3)),
                new("some.int", GgufValue.I32(-5)),
                new("llama.rope.freq_base", GgufValue.F32(500000f)),
                new("tokenizer.ggml.add_bos_token", GgufValue.Bool(true)),
                new("tokenizer.ggml.tokens", GgufValue.Strings(["<unk>", "\u2581h\u00e9llo", ""])),
                new("tokenizer.ggml.scores", GgufValue.Floats([0f, -1.5f, -2f])),
                new("tokenizer.ggml.token_type", GgufValue.Ints([2, 1, 5])),
            };
            var a = Enumerable.Range(0, 3 * 5).Select(i => i * 0.25f).ToArray();
            var b = Enumerable.Range(0, 7).Select(i => (Half)(i - 3)).ToArray();
            using (var writer = GgufWriter.Create(path, metadata, [("a.weight", [5L, 3L], GgmlType.F32), ("b.weight", [7L], GgmlType.F16)]))
            {
                writer.WriteTensor("a.weight", MemoryMarshal.AsBytes(a.AsSpan()));
                writer.WriteTensor("b.weight", MemoryMarshal.AsBytes(b.AsSpan()));
                writer.Complete();
            }
            var file = GgufFile.Read(path);
            if (file.FileVersion != 3 || file.Alignment != 32 || file.DataStart % 32 != 0) return $"version {file.FileVersion}, alignment {file.Alignment}, data at {file.DataStart}";
            if (file.Metadata.Count != metadata.Count) return $"{file.Metadata.Count} metadata keys, wrote {metadata.Count}";
            foreach (var ((key, wrote), (readKey, read)) in metadata.Zip(file.Metadata))
            {
                var same = key == readKey && wrote.Type == read.Type && (wrote.Value is Array x
                    ? read.Value is Array y && x.Length == y.Length && x.Cast<object>().SequenceEqual(y.Cast<object>())
                    : Equals(wrote.Value, read.Value));
                if (!same) return $"metadata {key} read back as {readKey} = {read.Value}";
            }
            var bytes = File.ReadAllBytes(path);
            var ta = file.Tensors[0];
            var tb = file.Tensors[1];
            if (ta.Name != "a.weight" || !ta.Dims.SequenceEqual([5L, 3L]) || ta.Type != GgmlType.F32 || ta.Offset != 0) return $"tensor a: {ta}";
            if (tb.Name != "b.weight" || tb.Type != GgmlType.F16 || tb.Offset != 64) return $"tensor b: {tb} (expected offset 64: 60 bytes of a, aligned to 32)";
            if (!bytes.AsSpan((int)(file.DataStart + ta.Offset), 60).SequenceEqual(MemoryMarshal.AsBytes(a.AsSpan()))) return "tensor a's bytes differ";
            if (!bytes.AsSpan((int)(file.DataStart + tb.Offset), 14).SequenceEqual(MemoryMarshal.AsBytes(b.AsSpan()))) return "tensor b's bytes differ";
            if (bytes.Length != file.DataStart + 96) return $"file is {bytes.Length} bytes, expected data start + 96 (b padded to the alignment)";
            return null;
        }
        finally
        {
            File.Delete(path);
        }
    }
}
