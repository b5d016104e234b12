using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using Kiln.Checkpoints.Gguf;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Runtime;

namespace Kiln.Tests.Checkpoints.Gguf;

/// <summary>
/// A Gemma checkpoint written as llama.cpp's convert_hf_to_gguf.py writes one (gemma.* metadata, each RMSNorm gain
/// stored as 1 + w, the q and k rows as Hugging Face has them, no output tensor: the embedding is tied) reads as its
/// Hugging Face folder and gives exactly its logits. The tokenizer metadata is the default model's GGUF's.
/// </summary>
public sealed class GgufGemmaTests : IDisposable
{
    private static readonly SessionSettings OneThread = new(IntraOpThreads: 1);
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void A_gemma_gguf_reads_as_its_hugging_face_folder()
    {
        var (folder, gguf) = WriteBoth();
        using var fromFolder = Checkpoint.Open(folder);
        using var fromGguf = Checkpoint.Open(gguf);

        Assert.Equal("gemma", fromGguf.Config["model_type"]!.GetValue<string>());
        Assert.Equal(32, fromGguf.Config["head_dim"]!.GetValue<long>());
        Assert.True(fromGguf.Config["tie_word_embeddings"]!.GetValue<bool>());
        Assert.Equal([.. fromFolder.Tensors.Keys.Order(StringComparer.Ordinal)], fromGguf.Tensors.Keys.Order(StringComparer.Ordinal));
        // The norm gains take the file's 1 back; nothing else (Gemma's q and k rows are not permuted) has a step.
        foreach (var name in fromFolder.Tensors.Keys)
            Assert.Equal(name.EndsWith("norm.weight", StringComparison.Ordinal) ? ["offset(-1)"] : Array.Empty<string>(), fromGguf.StorageSteps(name).Select(s => s.ToString()));
    }

    [Fact]
    public void A_gemma_gguf_gives_exactly_the_logits_of_its_hugging_face_folder()
    {
        var (folder, gguf) = WriteBoth();
        using var reference = LoadedModel.Load(folder, OneThread);
        using var model = LoadedModel.Load(gguf, OneThread);
        long[] ids = [1, 5, 200, 17, 3, 99, 511];
        long[] positions = [.. Enumerable.Range(0, ids.Length).Select(i => (long)i)];

        // 1 + w - 1 + 1 is the file's 1 + w again, so the kernels see the same gains as from the folder.
        Assert.Equal(reference.Forward(ids, positions), model.Forward(ids, positions));
    }

    [Fact]
    public void Kiln_logits_of_a_gemma_gguf_equal_those_of_its_folder()
    {
        var (folder, gguf) = WriteBoth();
        string Logits(string model)
        {
            var result = KilnCli.Run("logits", "--model", model, "--ids", "2 40 300 7", "--no-cache", "--json");
            Assert.True(result.ExitCode == 0, result.Stderr);
            return JsonNode.Parse(result.Stdout)!["last_logits"]!.ToJsonString();
        }
        Assert.Equal(Logits(folder), Logits(gguf));
    }

    private (string Folder, string Gguf) WriteBoth()
    {
        var folder = dir.File("hf");
        RandomCheckpointWriter.Write(new TestModelOptions("gemma", Layers: 2, Hidden: 64, Heads: 4, KvHeads: 2, Intermediate: 96, Vocab: 512,
            DType: DType.F32, Seed: 21, MaxPositions: 64, ModelType: "gemma", ExplicitHeadDim: 32, WeightScale: 4), folder);
        return (folder, Convert(folder, dir.File("gemma.gguf")));
    }

    // As convert_hf_to_gguf.py's GemmaModel: gemma.* hyperparameters, llama.cpp's tensor names with the dims reversed,
    // norm gains + 1, F32 as stored.
    private static string Convert(string folder, string path)
    {
        using var checkpoint = Checkpoint.Open(folder);
        var config = checkpoint.Config;
        uint Int(string key) => (uint)config[key]!.GetValue<long>();
        var metadata = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", new GgufValue(GgufValueType.String, "gemma")),
            new("gemma.context_length", new GgufValue(GgufValueType.UInt32, Int("max_position_embeddings"))),
            new("gemma.embedding_length", new GgufValue(GgufValueType.UInt32, Int("hidden_size"))),
            new("gemma.block_count", new GgufValue(GgufValueType.UInt32, Int("num_hidden_layers"))),
            new("gemma.feed_forward_length", new GgufValue(GgufValueType.UInt32, Int("intermediate_size"))),
            new("gemma.attention.head_count", new GgufValue(GgufValueType.UInt32, Int("num_attention_heads"))),
            new("gemma.attention.head_count_kv", new GgufValue(GgufValueType.UInt32, Int("num_key_value_heads"))),
            new("gemma.attention.layer_norm_rms_epsilon", new GgufValue(GgufValueType.Float32, (float)config["rms_norm_eps"]!.GetValue<double>())),
            new("gemma.attention.key_length", new GgufValue(GgufValueType.UInt32, Int("head_dim"))),
            new("gemma.attention.value_length", new GgufValue(GgufValueType.UInt32, Int("head_dim"))),
        };
        metadata.AddRange(GgufModels.Read(GgufModels.Stories260K).Metadata.Where(e => e.Key.StartsWith("tokenizer.", StringComparison.Ordinal)));

        var tensors = new List<GgufTensorData>();
        foreach (var (name, tensor) in checkpoint.Tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            var values = MemoryMarshal.Cast<byte, float>(checkpoint.GetBytes(name)).ToArray();
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) values = [.. values.Select(v => v + 1)];
            var ggufName = GgufTensorNames.FromHuggingFace(name) ?? throw new InvalidOperationException($"no llama.cpp name for {name}");
            tensors.Add(new GgufTensorData(ggufName, [.. tensor.Shape.Reverse()], GgmlType.F32, MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));
        }
        GgufWriter.Write(path, metadata, tensors);
        return path;
    }
}
