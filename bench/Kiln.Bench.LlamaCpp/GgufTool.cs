using System.Globalization;

namespace Kiln.Bench.LlamaCpp;

/// <summary>`gguf --model DIR --out FILE [--type f32|f16]` and `gguf-info FILE`.</summary>
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

    private static string Show(object v) => v switch
    {
        string s => $"\"{s}\"",
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        _ => System.Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
    };
}
