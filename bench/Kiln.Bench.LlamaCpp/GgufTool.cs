using System.Globalization;

namespace Kiln.Bench.LlamaCpp;

/// <summary>`gguf --model DIR --out FILE [--type f32|f16]`, `gguf-info FILE` and `gguf-diff A B`.</summary>
internal static class GgufTool
{
    public static int Convert(string[] args)
    {
        var o = ChildOptions.Parse(args);
        var type = args.Contains("--type") ? o.String("--type") : "f32";
        var conversion = HfToGguf.Write(o.String("--model"), o.String("--out"), type switch
        {
            "f32" => GgmlType.F32,
            "f16" => GgmlType.F16,
            _ => throw new ArgumentException("--type: f32 or f16"),
        });
        Console.WriteLine($"wrote {conversion.Path}: {conversion.Bytes:N0} bytes, {conversion.Tensors} tensors, vocabulary {conversion.VocabularySource}");
        return Info([conversion.Path]);
    }

    /// <summary>Reads a GGUF back (checking every tensor lies aligned inside the file) and prints its metadata and tensors.</summary>
    public static int Info(string[] args)
    {
        if (args.Length != 1) throw new ArgumentException("usage: gguf-info FILE");
        var gguf = GgufFile.Read(args[0]);
        Console.WriteLine($"GGUF v{gguf.FileVersion}, {gguf.Metadata.Count} metadata keys, {gguf.Tensors.Count} tensors, alignment {gguf.Alignment}, data at {gguf.DataStart}, {gguf.FileLength:N0} bytes");
        foreach (var (key, value) in gguf.Metadata)
        {
            var shown = value.Value is Array array
                ? $"[{value.ElementType} x {array.Length}: {string.Join(", ", array.Cast<object>().Take(6).Select(Show))}{(array.Length > 6 ? ", ..." : "")}]"
                : Show(value.Value);
            Console.WriteLine($"  {key} ({value.Type}) = {shown}");
        }
        foreach (var t in gguf.Tensors)
            Console.WriteLine($"  {t.Name,-28} {t.Type,-5} [{string.Join(", ", t.Dims)}] at {t.Offset} ({t.ByteLength:N0} bytes)");
        Console.WriteLine($"weight bytes per decode step as stored: {LlamaCppChild.WeightBytesPerToken(gguf):N0}");
        return 0;
    }

    /// <summary>
    /// `gguf-diff A B`: for every tensor name in both files with F32 or F16 data in each, the largest
    /// absolute difference of the values (shapes must match); the names in only one of them; the metadata
    /// keys whose values differ and those in one file only.
    /// </summary>
    public static int Diff(string[] args)
    {
        if (args.Length != 2) throw new ArgumentException("usage: gguf-diff A B");
        var (a, b) = (GgufFile.Read(args[0]), GgufFile.Read(args[1]));
        var bByName = b.Tensors.ToDictionary(t => t.Name);
        var worst = 0.0;
        foreach (var ta in a.Tensors)
        {
            if (!bByName.TryGetValue(ta.Name, out var tb)) continue;
            if (!ta.Dims.SequenceEqual(tb.Dims))
            {
                Console.WriteLine($"  {ta.Name,-28} shapes differ: [{string.Join(", ", ta.Dims)}] vs [{string.Join(", ", tb.Dims)}]");
                worst = double.PositiveInfinity;
                continue;
            }
            if (ta.Type is not (GgmlType.F32 or GgmlType.F16) || tb.Type is not (GgmlType.F32 or GgmlType.F16))
            {
                Console.WriteLine($"  {ta.Name,-28} {ta.Type} vs {tb.Type}: not compared");
                continue;
            }
            var (va, vb) = (Values(args[0], a, ta), Values(args[1], b, tb));
            var diff = va.Zip(vb).Max(x => Math.Abs((double)x.First - x.Second));
            worst = Math.Max(worst, diff);
            Console.WriteLine($"  {ta.Name,-28} max |a - b| = {diff.ToString("G4", CultureInfo.InvariantCulture)}");
        }
        foreach (var t in a.Tensors.Where(t => !bByName.ContainsKey(t.Name))) Console.WriteLine($"  {t.Name,-28} only in {args[0]}");
        var aNames = a.Tensors.Select(t => t.Name).ToHashSet();
        foreach (var t in b.Tensors.Where(t => !aNames.Contains(t.Name))) Console.WriteLine($"  {t.Name,-28} only in {args[1]}");
        Console.WriteLine($"largest difference over the tensors compared: {worst.ToString("G4", CultureInfo.InvariantCulture)}");
        // Metadata: keys in both whose values differ, then keys in one file only.
        var bMeta = b.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        var differing = 0;
        foreach (var (key, va) in a.Metadata)
        {
            if (!bMeta.TryGetValue(key, out var vb)) continue;
            var same = va.Value is Array xa
                ? vb.Value is Array xb && xa.Length == xb.Length && xa.Cast<object>().SequenceEqual(xb.Cast<object>())
                : Equals(va.Value, vb.Value);
            if (same) continue;
            differing++;
            var detail = va.Value is Array aa && vb.Value is Array ab
                ? aa.Length != ab.Length ? $"{aa.Length} vs {ab.Length} entries"
                    : $"{Enumerable.Range(0, aa.Length).Count(i => !Equals(aa.GetValue(i), ab.GetValue(i)))} of {aa.Length} entries differ, first at {Enumerable.Range(0, aa.Length).First(i => !Equals(aa.GetValue(i), ab.GetValue(i)))}"
                : $"{Show(va.Value)} vs {Show(vb.Value)}";
            Console.WriteLine($"  metadata {key}: {detail}");
        }
        var aKeys = a.Metadata.Select(kv => kv.Key).ToHashSet();
        var onlyA = a.Metadata.Where(kv => !bMeta.ContainsKey(kv.Key)).Select(kv => kv.Key).ToList();
        var onlyB = b.Metadata.Where(kv => !aKeys.Contains(kv.Key)).Select(kv => kv.Key).ToList();
        Console.WriteLine($"metadata: {a.Metadata.Count - onlyA.Count - differing} keys equal, {differing} differ; only in {args[0]}: {string.Join(", ", onlyA)}; only in {args[1]}: {string.Join(", ", onlyB)}");
        return 0;
    }

    private static float[] Values(string path, GgufFile file, GgufTensor tensor)
    {
        using var stream = File.OpenRead(path);
        stream.Position = file.DataStart + tensor.Offset;
        var bytes = new byte[tensor.ByteLength];
        stream.ReadExactly(bytes);
        if (tensor.Type == GgmlType.F32) return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray();
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(h => (float)h).ToArray();
    }

    private static string Show(object v) => v switch
    {
        string s => $"\"{s}\"",
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        _ => System.Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
    };
}
