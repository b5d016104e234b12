using Kiln.Weights;

namespace Kiln.Checkpoints.Gguf;

/// <summary>
/// A GGUF file read as the Hugging Face checkpoint it was converted from: the config from its metadata
/// (<see cref="GgufConfig"/>), each tensor under its Hugging Face name (<see cref="GgufTensorNames"/>)
/// with its shape in PyTorch order, and what llama.cpp's converter changed undone by load-recipe steps:
/// the row order of a llama model's q and k projections (<see cref="DeinterleaveRowsStep"/>), Gemma's
/// norm gains stored as 1 + w (<see cref="OffsetStep"/>). Q8_0 and Q4_0 tensors are u8 rows of Kiln's
/// int8 and int4_sym blocks (<see cref="TensorInfo.Blocks"/>).
/// </summary>
public static class GgufCheckpoint
{
    public const string Extension = ".gguf";

    /// <summary>
    /// The GGUF file <paramref name="path"/> names for <c>--model</c>: the path itself when it is a file, or the one
    /// <c>*.gguf</c> of a folder without config.json; null for anything else (a Hugging Face folder).
    /// </summary>
    public static string? Find(string path)
    {
        if (File.Exists(path)) return path;
        if (!Directory.Exists(path) || File.Exists(Path.Combine(path, Checkpoint.ConfigFileName))) return null;
        var found = Directory.GetFiles(path, "*" + Extension).Order(StringComparer.Ordinal).ToArray();
        return found.Length switch
        {
            0 => null,
            1 => found[0],
            _ => throw new KilnException($"{path}: holds {found.Length} GGUF files ({string.Join(", ", found.Select(Path.GetFileName))}) and no config.json; pass one with --model FILE.gguf"),
        };
    }

    /// <summary>Opens the GGUF file at <paramref name="path"/>; throws <see cref="KilnException"/> naming the file and field at fault.</summary>
    public static Checkpoint Open(string path)
    {
        var file = GgufFile.Open(path);
        try
        {
            var architecture = GgufConfig.Architecture(file.Metadata);
            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            foreach (var tensor in file.Header.Tensors)
            {
                var info = Rename(path, architecture, tensor);
                tensors.Add(info.Name, info);
            }
            var config = GgufConfig.Read(file.Metadata, tensors.Keys.ToHashSet(StringComparer.Ordinal));
            var storage = new Dictionary<string, IReadOnlyList<RecipeStep>>(StringComparer.Ordinal);
            if (HeadSize(config) is { } head)
            {
                foreach (var tensor in file.Header.Tensors.Where(t => GgufTensorNames.IsRotaryPermuted(architecture, t.Name)))
                    storage[GgufTensorNames.ToHuggingFace(tensor.Name)!] = [new DeinterleaveRowsStep(head)];
            }
            // Gemma's converter stores each RMSNorm gain as 1 + w, and the family's recipe adds the 1 to Hugging Face's
            // w: the file's gain gives it back first (1 + w - 1 + 1 is the file's 1 + w again, exactly for gains >= 0.5).
            if (architecture == "gemma")
            {
                foreach (var tensor in file.Header.Tensors.Where(t => GgufTensorNames.IsNormGain(t.Name)))
                    storage[GgufTensorNames.ToHuggingFace(tensor.Name)!] = [new OffsetStep(-1.0)];
            }
            var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
            return new Checkpoint(folder, path, config, null, [file.Mapping], tensors, storage, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    // The tensor under its Hugging Face name, shaped as PyTorch lists it (a block tensor's last dimension in bytes).
    private static TensorInfo Rename(string path, string architecture, GgufTensorInfo tensor)
    {
        if (tensor.Name == "rope_freqs.weight")
            throw KilnException.InFile(path, tensor.Name, "per-channel rotary frequency factors (Llama 3.1 rope scaling) are not supported");
        var name = GgufTensorNames.ToHuggingFace(tensor.Name)
            ?? throw KilnException.InFile(path, GgufText.Show(tensor.Name), $"not a tensor of a {architecture} model (token_embd, output_norm, output, blk.N.attn_*/ffn_*)");
        GgmlTypes.TryRead(tensor.Type, out var dtype, out var blocks);
        var shape = tensor.Shape;
        if (blocks is { } scheme && shape.Length > 0) shape[^1] = shape[^1] / QuantSchemes.BlockSize * scheme.BlockBytes();
        return new TensorInfo(name, dtype, shape, path, tensor.DataOffset, tensor.ByteLength, blocks);
    }

    // The rows of one head: the group llama.cpp permuted. Null when the config is too broken to say (its validation
    // then names the field).
    private static long? HeadSize(System.Text.Json.Nodes.JsonObject config)
    {
        var heads = config["num_attention_heads"]!.GetValue<long>();
        var head = config["head_dim"]?.GetValue<long>() ?? (heads > 0 ? config["hidden_size"]!.GetValue<long>() / heads : 0);
        return head >= 2 && head % 2 == 0 ? head : null;
    }
}
