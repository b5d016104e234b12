using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Bench.LlamaCpp;

/// <summary>
/// A copy of a checkpoint folder with every tensor stored in another float dtype (f32, f16 or bf16):
/// the f32 checkpoint Kiln's f32 and quantized runs read when the source is 16-bit (widening is exact),
/// or the 16-bit one its f16/bf16 run reads when the source is f32 (rounded to nearest even). config.json's
/// torch_dtype follows; generation_config.json and tokenizer files are copied as they are.
/// </summary>
internal static class CheckpointCopy
{
    public static void Write(string source, string destination, DType dtype)
    {
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16)) throw new ArgumentException($"not a float dtype: {dtype}", nameof(dtype));
        var staging = destination + ".tmp";
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        Directory.CreateDirectory(staging);
        using (var checkpoint = Checkpoint.Open(source))
        {
            var config = (JsonObject)checkpoint.Config.DeepClone();
            config["torch_dtype"] = dtype switch { DType.F32 => "float32", DType.F16 => "float16", _ => "bfloat16" };
            File.WriteAllText(Path.Combine(staging, Checkpoint.ConfigFileName), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            foreach (var name in new[] { Checkpoint.GenerationConfigFileName, "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" })
            {
                var from = Path.Combine(source, name);
                if (File.Exists(from)) File.Copy(from, Path.Combine(staging, name));
            }
            var entries = checkpoint.Tensors.Values.OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => new SafetensorsEntry(t.Name, dtype, t.Shape)).ToList();
            using var writer = SafetensorsWriter.Create(Path.Combine(staging, Checkpoint.SingleWeightsFileName), entries,
                new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var entry in writer.Order)
            {
                var values = HfToGguf.ReadFloats(checkpoint, entry.Name);
                writer.WriteTensor(entry.Name, Encode(values, dtype));
            }
            writer.Complete();
        }
        if (Directory.Exists(destination)) Directory.Delete(destination, recursive: true);
        Directory.Move(staging, destination);
    }

    private static byte[] Encode(float[] values, DType dtype)
    {
        switch (dtype)
        {
            case DType.F32:
                return MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
            case DType.F16:
            {
                var half = new Half[values.Length];
                FloatConversion.SingleToHalf(values, half);
                return MemoryMarshal.AsBytes(half.AsSpan()).ToArray();
            }
            default:
            {
                var bf16 = new ushort[values.Length];
                FloatConversion.SingleToBFloat16(values, bf16);
                return MemoryMarshal.AsBytes(bf16.AsSpan()).ToArray();
            }
        }
    }
}
