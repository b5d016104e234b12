using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Bench.LlamaCpp;

/// <summary>The Llama configuration fields the GGUF needs, from config.json.</summary>
internal sealed record LlamaShape(int Layers, int Hidden, int Heads, int KvHeads, int HeadDim, int Intermediate, int Vocab,
    int ContextLength, float RopeTheta, float RmsEps, int? Bos, int? Eos)
{
    public static LlamaShape From(JsonObject config, string path)
    {
        int Int(string key) => config[key]?.GetValue<int>() ?? throw new InvalidDataException($"{path}: {key} is missing");
        var architectures = config["architectures"]?.AsArray().Select(a => a?.GetValue<string>()).ToArray() ?? [];
        var modelType = config["model_type"]?.GetValue<string>();
        if (modelType != "llama" && !architectures.Contains("LlamaForCausalLM"))
            throw new NotSupportedException($"{path}: only LlamaForCausalLM is converted here (model_type {modelType}, architectures {string.Join(",", architectures)})");
        if (config["rope_scaling"] is JsonObject)
            throw new NotSupportedException($"{path}: rope_scaling is not converted here (llama.cpp needs a rope_freqs tensor for llama3 scaling)");
        var heads = Int("num_attention_heads");
        var hidden = Int("hidden_size");
        var headDim = config["head_dim"]?.GetValue<int>() ?? hidden / heads;
        int? Id(string key) => config[key] switch
        {
            JsonArray a when a.Count > 0 => a[0]!.GetValue<int>(),
            JsonValue v => v.GetValue<int>(),
            _ => null,
        };
        return new LlamaShape(Int("num_hidden_layers"), hidden, heads, config["num_key_value_heads"]?.GetValue<int>() ?? heads, headDim,
            Int("intermediate_size"), Int("vocab_size"), Int("max_position_embeddings"),
            (float)(config["rope_theta"]?.GetValue<double>() ?? 10000), (float)(config["rms_norm_eps"]?.GetValue<double>() ?? 1e-6),
            Id("bos_token_id"), Id("eos_token_id"));
    }
}

/// <summary>
/// Writes a Hugging Face LlamaForCausalLM checkpoint as GGUF, laid out as llama.cpp's
/// convert_hf_to_gguf.py lays out a Llama: its tensor names, dims in GGUF order (the HF shape
/// reversed), the Q and K projection rows permuted from HF's rotate-half rotary layout (the first half
/// of each head's dims paired with the second half) to llama.cpp's adjacent pairs (its LLAMA rope type
/// rotates (x0,x1), (x2,x3), ...), the llama.* hyperparameters, and a "llama" (SentencePiece-style)
/// vocabulary. F32 writes every tensor as f32; F16 writes matrices as f16 and vectors (norms, biases)
/// as f32, as the converter's f16 output does.
/// </summary>
internal static class HfToGguf
{
    public const int TokenTypeNormal = 1, TokenTypeUnknown = 2, TokenTypeControl = 3, TokenTypeUserDefined = 4, TokenTypeUnused = 5, TokenTypeByte = 6;

    /// <summary>What was written: the file, its tensor count and how its vocabulary was made.</summary>
    public sealed record Conversion(string Path, GgmlType Type, int Tensors, long Bytes, string VocabularySource);

    /// <summary>
    /// KILN_BENCH_GGUF_NO_PERMUTE=1 writes q and k in HF's row order: a deliberately wrong file, to check
    /// that the accuracy figures catch a wrong layout (bench/README.md).
    /// </summary>
    private static bool SkipPermutation => Environment.GetEnvironmentVariable("KILN_BENCH_GGUF_NO_PERMUTE") == "1";

    public static Conversion Write(string checkpointDirectory, string outPath, GgmlType type)
    {
        if (type is not (GgmlType.F32 or GgmlType.F16)) throw new ArgumentException($"writes F32 or F16, not {type}", nameof(type));
        using var checkpoint = Checkpoint.Open(checkpointDirectory);
        var shape = LlamaShape.From(checkpoint.Config, checkpoint.ConfigPath);
        var plan = Plan(checkpoint, shape);
        var (tokens, scores, tokenTypes, vocabularySource) = Vocabulary.Build(checkpoint.TokenizerPath, shape);
        var metadata = Metadata(shape, Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(checkpointDirectory))),
            type, tokens, scores, tokenTypes);

        var layout = plan.Select(p => (p.GgufName, p.HfShape.Reverse().ToArray(), TypeOf(p, type))).ToList();
        var temp = outPath + ".tmp";
        using (var writer = GgufWriter.Create(temp, metadata, layout))
        {
            foreach (var (p, (name, _, tensorType)) in plan.Zip(layout))
            {
                var values = ReadFloats(checkpoint, p.HfName);
                if (p.PermuteHeads is { } heads && !SkipPermutation) values = PermuteRotary(values, heads, shape.HeadDim);
                writer.WriteTensor(name, Encode(values, tensorType));
            }
            writer.Complete();
        }
        File.Move(temp, outPath, overwrite: true);
        return new Conversion(outPath, type, plan.Count, new FileInfo(outPath).Length, vocabularySource);
    }

    /// <summary>One tensor: its HF name and shape, GGUF name, and the head count its rows are permuted by (q and k only).</summary>
    private sealed record Planned(string HfName, long[] HfShape, string GgufName, int? PermuteHeads);

    private static List<Planned> Plan(Checkpoint checkpoint, LlamaShape shape)
    {
        var plan = new List<Planned>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        void Add(string hf, string gguf, int? permute = null, bool optional = false)
        {
            if (!checkpoint.Tensors.TryGetValue(hf, out var info))
            {
                if (optional) return;
                throw new InvalidDataException($"{checkpoint.Directory}: tensor {hf} not found");
            }
            plan.Add(new Planned(hf, info.Shape, gguf, permute));
            used.Add(hf);
        }
        Add("model.embed_tokens.weight", "token_embd.weight");
        for (var i = 0; i < shape.Layers; i++)
        {
            var hf = $"model.layers.{i}.";
            var blk = $"blk.{i}.";
            Add(hf + "input_layernorm.weight", blk + "attn_norm.weight");
            foreach (var part in new[] { "weight", "bias" })
            {
                var optional = part == "bias";
                Add(hf + $"self_attn.q_proj.{part}", blk + $"attn_q.{part}", shape.Heads, optional);
                Add(hf + $"self_attn.k_proj.{part}", blk + $"attn_k.{part}", shape.KvHeads, optional);
                Add(hf + $"self_attn.v_proj.{part}", blk + $"attn_v.{part}", null, optional);
                Add(hf + $"self_attn.o_proj.{part}", blk + $"attn_output.{part}", null, optional);
            }
            Add(hf + "post_attention_layernorm.weight", blk + "ffn_norm.weight");
            foreach (var part in new[] { "weight", "bias" })
            {
                var optional = part == "bias";
                Add(hf + $"mlp.gate_proj.{part}", blk + $"ffn_gate.{part}", null, optional);
                Add(hf + $"mlp.up_proj.{part}", blk + $"ffn_up.{part}", null, optional);
                Add(hf + $"mlp.down_proj.{part}", blk + $"ffn_down.{part}", null, optional);
            }
        }
        Add("model.norm.weight", "output_norm.weight");
        // A tied embedding has no lm_head: llama.cpp then reads token_embd for the output, as the converter leaves it.
        Add("lm_head.weight", "output.weight", optional: true);
        var unused = checkpoint.Tensors.Keys.Where(k => !used.Contains(k)).Order(StringComparer.Ordinal).ToList();
        if (unused.Count > 0) throw new NotSupportedException($"{checkpoint.Directory}: tensors with no llama GGUF name: {string.Join(", ", unused.Take(5))}");
        return plan;
    }

    // The converter keeps 1-D tensors (norms, biases) in f32 in an f16 file.
    private static GgmlType TypeOf(Planned p, GgmlType type) => type == GgmlType.F16 && p.HfShape.Length >= 2 ? GgmlType.F16 : GgmlType.F32;

    private static List<KeyValuePair<string, GgufValue>> Metadata(LlamaShape s, string name, GgmlType type, string[] tokens, float[] scores, int[] tokenTypes)
    {
        var m = new List<KeyValuePair<string, GgufValue>>();
        void Add(string key, GgufValue value) => m.Add(new(key, value));
        Add("general.architecture", GgufValue.Str("llama"));
        Add("general.type", GgufValue.Str("model"));
        Add("general.name", GgufValue.Str(name));
        Add("general.alignment", GgufValue.U32(GgufFile.DefaultAlignment));
        Add("llama.block_count", GgufValue.U32((uint)s.Layers));
        Add("llama.context_length", GgufValue.U32((uint)s.ContextLength));
        Add("llama.embedding_length", GgufValue.U32((uint)s.Hidden));
        Add("llama.feed_forward_length", GgufValue.U32((uint)s.Intermediate));
        Add("llama.attention.head_count", GgufValue.U32((uint)s.Heads));
        Add("llama.attention.head_count_kv", GgufValue.U32((uint)s.KvHeads));
        Add("llama.rope.freq_base", GgufValue.F32(s.RopeTheta));
        Add("llama.attention.layer_norm_rms_epsilon", GgufValue.F32(s.RmsEps));
        if (s.HeadDim * s.Heads != s.Hidden)
        {
            Add("llama.attention.key_length", GgufValue.U32((uint)s.HeadDim));
            Add("llama.attention.value_length", GgufValue.U32((uint)s.HeadDim));
        }
        Add("llama.vocab_size", GgufValue.U32((uint)s.Vocab));
        Add("llama.rope.dimension_count", GgufValue.U32((uint)s.HeadDim));
        Add("general.file_type", GgufValue.U32(type == GgmlType.F32 ? 0u : 1u)); // LLAMA_FTYPE_ALL_F32 / MOSTLY_F16
        Add("tokenizer.ggml.model", GgufValue.Str("llama"));
        Add("tokenizer.ggml.pre", GgufValue.Str("default"));
        Add("tokenizer.ggml.tokens", GgufValue.Strings(tokens));
        Add("tokenizer.ggml.scores", GgufValue.Floats(scores));
        Add("tokenizer.ggml.token_type", GgufValue.Ints(tokenTypes));
        if (s.Bos is { } bos) Add("tokenizer.ggml.bos_token_id", GgufValue.U32((uint)bos));
        if (s.Eos is { } eos) Add("tokenizer.ggml.eos_token_id", GgufValue.U32((uint)eos));
        var unk = Array.IndexOf(tokenTypes, TokenTypeUnknown);
        if (unk >= 0) Add("tokenizer.ggml.unknown_token_id", GgufValue.U32((uint)unk));
        Add("tokenizer.ggml.add_bos_token", GgufValue.Bool(s.Bos is not null));
        Add("tokenizer.ggml.add_eos_token", GgufValue.Bool(false));
        return m;
    }

    /// <summary>A tensor's values as f32, whatever its stored dtype.</summary>
    public static float[] ReadFloats(Checkpoint checkpoint, string name)
    {
        var info = checkpoint.Tensor(name);
        var bytes = checkpoint.GetBytes(name);
        var values = new float[info.ElementCount];
        switch (info.DType)
        {
            case DType.F32: MemoryMarshal.Cast<byte, float>(bytes).CopyTo(values); break;
            case DType.BF16: FloatConversion.BFloat16ToSingle(MemoryMarshal.Cast<byte, ushort>(bytes), values); break;
            case DType.F16: FloatConversion.HalfToSingle(MemoryMarshal.Cast<byte, Half>(bytes), values); break;
            default: throw new NotSupportedException($"{name}: dtype {info.DType}");
        }
        return values;
    }

    /// <summary>
    /// Rows of a [heads × headDim, ...] projection, per head, from HF order (half h, index i at row
    /// h·headDim/2 + i) to llama.cpp order (row 2i + h): what the converter's permute() does with
    /// reshape(heads, 2, headDim/2, ...).swapaxes(1, 2).
    /// </summary>
    public static float[] PermuteRotary(float[] values, int heads, int headDim)
    {
        if (headDim % 2 != 0) throw new InvalidDataException($"head_dim {headDim} is odd");
        var rowLength = values.Length / (heads * headDim);
        if (rowLength * heads * headDim != values.Length) throw new InvalidDataException($"{values.Length} values are not {heads} heads of {headDim} rows");
        var result = new float[values.Length];
        var half = headDim / 2;
        for (var h = 0; h < heads; h++)
        {
            for (var part = 0; part < 2; part++)
            {
                for (var i = 0; i < half; i++)
                {
                    var from = (h * headDim + part * half + i) * rowLength;
                    var to = (h * headDim + 2 * i + part) * rowLength;
                    Array.Copy(values, from, result, to, rowLength);
                }
            }
        }
        return result;
    }

    private static byte[] Encode(float[] values, GgmlType type)
    {
        if (type == GgmlType.F32) return MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        var half = new Half[values.Length];
        FloatConversion.SingleToHalf(values, half);
        return MemoryMarshal.AsBytes(half.AsSpan()).ToArray();
    }
}
