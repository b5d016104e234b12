using System.Runtime.InteropServices;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Export;
using Kiln.Graph;
using Kiln.Models;
using Kiln.Ops;
using Kiln.Runtime;
using Kiln.Transforms;

namespace Kiln.Tests.Runtime;

/// <summary>
/// The Llama family (Llama, Mistral, Qwen2) traced directly in fused form (rms_norm, rotary_embedding,
/// attention, swiglu) with the reference form's causal mask, as the fusion transforms will leave it:
/// lets the cache be tested on real checkpoints before those transforms exist.
/// </summary>
public static class FusedLlama
{
    private const double MaskedScore = -3.4028234663852886e38;

    /// <summary>Loads a checkpoint through the fused graph and the given transforms (e.g. load_weights, insert_kv_cache).</summary>
    public static LoadedModel Load(string directory, string pipelineYaml, SessionSettings? settings = null)
    {
        using var file = new TempDir();
        File.WriteAllText(file.File("pipeline.yaml"), pipelineYaml);
        var pipeline = PipelineConfig.Load(file.File("pipeline.yaml"));
        var checkpoint = Checkpoint.Open(directory);
        try
        {
            var graph = Trace(LlamaConfig.Read(new ConfigReader(checkpoint.Config, Checkpoint.ConfigFileName)));
            Pipeline.Run(graph, pipeline.Entries, new TransformContext(checkpoint));
            return LoadedModel.Create(checkpoint, graph, settings);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    public const string Uncached = "transforms:\n  - name: load_weights\n";
    public const string Cached = Uncached + "  - name: insert_kv_cache\n";
    public const string CachedSeparateRotary = Cached + "    fuse_rotary: false\n";

    public static ModelGraph Trace(LlamaConfig c)
    {
        if (c.QkNorm) throw new NotSupportedException("q/k norm is not traced here");
        var t = new Tracer(OpRegistry.Default);
        var ids = t.Input("input_ids", DType.I64, Dim.Sym("batch"), Dim.Sym("seq"));
        var positions = t.Input("position_ids", DType.I64, Dim.Sym("batch"), Dim.Sym("seq"));
        var embedding = t.Parameter("model.embed_tokens.weight", c.VocabSize, c.HiddenSize);
        var hidden = t.Op("gather", [embedding, ids], new() { ["axis"] = 0L });
        var (cos, sin) = RotaryCaches(t, c);
        var mask = CausalMask(t, positions, c.SlidingWindow);
        for (var layer = 0; layer < c.Layers; layer++)
        {
            var p = $"model.layers.{layer}";
            var h = RmsNorm(t, hidden, $"{p}.input_layernorm.weight", c);
            Tensor Heads(string name, int heads) =>
                Linear(t, h, $"{p}.self_attn.{name}", heads * c.HeadDim, c.HiddenSize, c.AttentionBias).View(0, 0, -1, c.HeadDim).Transpose(1, 2);
            var q = t.Op("rotary_embedding", [Heads("q_proj", c.Heads), positions, cos, sin]);
            var k = t.Op("rotary_embedding", [Heads("k_proj", c.KvHeads), positions, cos, sin]);
            var v = Heads("v_proj", c.KvHeads);
            var attention = t.Op("attention", [q, k, v, mask], new() { ["scale"] = 1 / Math.Sqrt(c.HeadDim) });
            var merged = attention.Transpose(1, 2).View(0, 0, -1);
            hidden = hidden + Linear(t, merged, $"{p}.self_attn.o_proj", c.HiddenSize, c.Heads * c.HeadDim, c.OutputProjectionBias);
            h = RmsNorm(t, hidden, $"{p}.post_attention_layernorm.weight", c);
            var gate = Linear(t, h, $"{p}.mlp.gate_proj", c.IntermediateSize, c.HiddenSize, c.MlpBias);
            var up = Linear(t, h, $"{p}.mlp.up_proj", c.IntermediateSize, c.HiddenSize, c.MlpBias);
            hidden = hidden + Linear(t, t.Op("swiglu", [gate, up]), $"{p}.mlp.down_proj", c.HiddenSize, c.IntermediateSize, c.MlpBias);
        }
        hidden = RmsNorm(t, hidden, "model.norm.weight", c);
        var head = c.TieWordEmbeddings ? embedding : t.Parameter("lm_head.weight", c.VocabSize, c.HiddenSize);
        t.Output(t.Op("linear", [hidden, head]));
        var g = t.Graph;
        g.Metadata["architecture"] = c.Architecture;
        g.Metadata["family"] = "llama";
        g.Metadata["vocab_size"] = c.VocabSize.ToString();
        g.Metadata["max_position_embeddings"] = c.MaxPositions.ToString();
        return g;
    }

    private static Tensor Linear(Tracer t, Tensor x, string name, int outFeatures, int inFeatures, bool bias)
    {
        var weight = t.Parameter(name + ".weight", outFeatures, inFeatures);
        return bias ? t.Op("linear", [x, weight, t.Parameter(name + ".bias", outFeatures)]) : t.Op("linear", [x, weight]);
    }

    private static Tensor RmsNorm(Tracer t, Tensor x, string weight, LlamaConfig c) =>
        t.Op("rms_norm", [x, t.Parameter(weight, c.HiddenSize)], new() { ["epsilon"] = c.RmsNormEps });

    // cos/sin of position * inv_freq in fp32, as transformers computes them, for every position of the context.
    private static (Tensor Cos, Tensor Sin) RotaryCaches(Tracer t, LlamaConfig c)
    {
        var invFreq = c.Rope.InverseFrequencies();
        var half = invFreq.Length;
        var cos = new float[c.MaxPositions * half];
        var sin = new float[c.MaxPositions * half];
        for (var p = 0; p < c.MaxPositions; p++)
        {
            for (var j = 0; j < half; j++)
            {
                var angle = (float)p * invFreq[j];
                cos[p * half + j] = (float)Math.Cos(angle);
                sin[p * half + j] = (float)Math.Sin(angle);
            }
        }
        Tensor Cache(string name, float[] values) =>
            new(t, t.Graph.AddBuffer(name, DType.F32, [c.MaxPositions, half], MemoryMarshal.AsBytes(values.AsSpan()).ToArray()).Value);
        return (Cache("rotary.cos_cache", cos), Cache("rotary.sin_cache", sin));
    }

    // As LlamaModel.CausalMask.
    private static Tensor CausalMask(Tracer t, Tensor positionIds, int? window)
    {
        var queryPositions = positionIds.Unsqueeze(-1);
        var keyPositions = positionIds.Unsqueeze(1);
        var allowed = keyPositions.LessOrEqual(queryPositions);
        if (window is { } w) allowed = allowed.And(keyPositions.Greater(queryPositions - w));
        return allowed.Where(t.Scalar(0, DType.F32), t.Scalar(MaskedScore, DType.F32)).Unsqueeze(1);
    }
}
