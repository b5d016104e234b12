using Kiln.Graph;
using Kiln.Ops;

namespace Kiln.Transforms.CacheInit;

/// <summary>Settings of insert_kv_cache.</summary>
public sealed record InsertKvCacheConfig : TransformConfig
{
    /// <summary>
    /// Fold rotary_embedding of q and k into the attention kernel (GroupQueryAttention do_rotary), which
    /// derives positions from the cache length: the runtime feeds consecutive positions from 0. Applies
    /// where the head dimension is a multiple of 16 (the kernel's requirement); elsewhere rotary stays.
    /// </summary>
    public bool FuseRotary { get; init; } = true;
}

/// <summary>
/// insert_kv_cache (cache_init): rewrites every <c>attention</c> node into <c>cached_attention</c>, which
/// reads the keys and values of earlier tokens from a cache and appends the new ones. Adds the
/// <see cref="KvCacheSignature"/> inputs and outputs and records the signature in the metadata. The
/// causal mask must be the reference form's (the kernel applies it, with the same sliding window);
/// its subgraph and any input left unread are removed.
/// </summary>
public sealed class InsertKvCacheTransform : Transform<InsertKvCacheConfig>
{
    private static readonly long[] SwapHeadsAndSeq = [0, 2, 1, 3];

    // ORT 1.31 CPU GroupQueryAttention with do_rotary fails at run time otherwise ("head_size shall be a
    // multiple of 16"); without do_rotary it runs any even head size (stories260K: 8).
    private const long RotaryHeadDimMultiple = 16;

    public override string Name => "insert_kv_cache";

    public override Stage Stage => Stage.CacheInit;

    protected override int Rewrite(ModelGraph graph, InsertKvCacheConfig config, TransformContext context)
    {
        var attentions = graph.Nodes.Where(n => n.Op == "attention").ToList();
        if (attentions.Count == 0) return 0;
        if (KvCacheSignature.ReadFrom(graph) != null) throw new GraphException("insert_kv_cache: the graph already has a key/value cache");

        var readBefore = graph.Inputs.Concat(graph.Buffers.Select(b => b.Value)).Where(v => v.IsUsed).ToList();
        var first = attentions[0].Inputs;
        var (kvHeads, headDim, batch) = (first[1].Shape[1], first[0].Shape[3], first[0].Shape[0]);
        var seqLens = graph.AddInput(KvCacheSignature.SeqLensInput, DType.I32, Shape.Of(batch));
        var totalLength = graph.AddInput(KvCacheSignature.TotalLengthInput, DType.I32, Shape.Scalar);

        for (var layer = 0; layer < attentions.Count; layer++)
        {
            var node = attentions[layer];
            var (q, k, v, mask) = (node.Inputs[0], node.Inputs[1], node.Inputs[2], node.Inputs[3]);
            if (k.Shape[1] != kvHeads || q.Shape[3] != headDim || q.Shape[0] != batch)
                throw new GraphException($"insert_kv_cache: attention {node.Output.Name} has another head layout than the first layer; one cache signature needs one");
            var causal = CausalMask.Match(mask)
                ?? throw new GraphException($"insert_kv_cache: the mask of attention {node.Output.Name} is not a causal mask built from the position ids");
            var heads = q.Shape[1].Size;

            var inputs = new List<Value>();
            var rotary = config.FuseRotary ? FusableRotary(q, k, node, causal) : null;
            inputs.Add(ToBsd(graph, node, rotary?.Q.Inputs[0] ?? q));
            inputs.Add(ToBsd(graph, node, rotary?.K.Inputs[0] ?? k));
            inputs.Add(ToBsd(graph, node, v));
            var cacheShape = Shape.Of(batch, kvHeads, Dim.Sym(KvCacheSignature.MaxSeqSymbol), headDim);
            inputs.Add(graph.AddInput(KvCacheSignature.PastKey(layer), k.DType, cacheShape));
            inputs.Add(graph.AddInput(KvCacheSignature.PastValue(layer), v.DType, cacheShape));
            inputs.Add(seqLens);
            inputs.Add(totalLength);
            if (rotary != null) inputs.AddRange([rotary.Q.Inputs[2], rotary.Q.Inputs[3]]);

            var attributes = new Dictionary<string, AttributeValue>
            {
                ["num_heads"] = new IntAttribute(heads),
                ["kv_num_heads"] = new IntAttribute(kvHeads.Size),
                ["scale"] = new FloatAttribute(node.Float("scale")),
                // The reference lets query i see keys i - w + 1 .. i. Measured on ORT 1.31 CPU (KvCacheTests, window 5):
                // local_window_size = w gives the same logits, so it counts the query's own key; w - 1 does not.
                ["local_window_size"] = new IntAttribute(causal.SlidingWindow is { } w ? w : -1),
                ["do_rotary"] = new IntAttribute(rotary != null ? 1 : 0),
            };
            var cached = graph.CreateNode(CachedAttentionOp.Name, inputs, attributes, $"layers.{layer}.cached_attention",
                [$"layers.{layer}.cached_attention", KvCacheSignature.PresentKey(layer), KvCacheSignature.PresentValue(layer)]);
            graph.InsertBefore(node, cached);
            ReplaceOutput(graph, node, cached);
            graph.Outputs.Add(cached.Outputs[1]);
            graph.Outputs.Add(cached.Outputs[2]);
        }

        graph.EraseNodes(GraphAnalysis.DeadNodes(graph));
        RemoveUnread(graph, readBefore);
        new KvCacheSignature(attentions.Count, (int)kvHeads.Size, (int)headDim.Size).WriteTo(graph);
        return attentions.Count;
    }

    private sealed record RotaryPair(Node Q, Node K);

    // q and k rotated by the same rotary_embedding inputs at the mask's positions, read only by this attention.
    private static RotaryPair? FusableRotary(Value q, Value k, Node attention, CausalMask causal)
    {
        if (q.Producer is not { } rq || k.Producer is not { } rk) return null;
        if (rq.Op != "rotary_embedding" || rk.Op != "rotary_embedding") return null;
        if (!ReferenceEquals(rq.Inputs[1], causal.PositionIds) || !ReferenceEquals(rk.Inputs[1], causal.PositionIds)) return null;
        if (!ReferenceEquals(rq.Inputs[2], rk.Inputs[2]) || !ReferenceEquals(rq.Inputs[3], rk.Inputs[3])) return null;
        if (rq.Inputs[2].DType != q.DType || q.Shape[3].Size % RotaryHeadDimMultiple != 0) return null;
        bool OnlyAttention(Value v) => v.Users is [var only] && ReferenceEquals(only, attention);
        return OnlyAttention(q) && OnlyAttention(k) ? new RotaryPair(rq, rk) : null;
    }

    // [b, N, s, d] -> [b, s, N*d], reusing the traced transpose/reshape that made x when there is one.
    private static Value ToBsd(ModelGraph graph, Node anchor, Value x)
    {
        var (heads, headDim) = (x.Shape[1].Size, x.Shape[3].Size);
        var target = Shape.Of(x.Shape[0], x.Shape[2], heads * headDim);
        Value bsnd;
        if (x.Producer is { Op: "transpose" } transpose && transpose.Ints("perm").SequenceEqual(SwapHeadsAndSeq))
        {
            bsnd = transpose.Inputs[0];
            if (bsnd.Producer is { Op: "reshape" } reshape && reshape.Inputs[0].Shape == target)
                return reshape.Inputs[0];
        }
        else
        {
            bsnd = Insert(graph, anchor, "transpose", x, new() { ["perm"] = new IntsAttribute(SwapHeadsAndSeq) });
        }
        return Insert(graph, anchor, "reshape", bsnd, new() { ["shape"] = new IntsAttribute([0, 0, heads * headDim]) });
    }

    // The attention output [b, H, s, d] becomes [b, s, H*d]: the traced transpose + reshape that follow it are folded.
    private static void ReplaceOutput(ModelGraph graph, Node attention, Node cached)
    {
        var output = cached.Outputs[0];
        if (attention.Output.Users is [{ Op: "transpose" } transpose] && transpose.Ints("perm").SequenceEqual(SwapHeadsAndSeq)
            && transpose.Output.Users is [{ Op: "reshape" } reshape] && reshape.Output.Type == output.Type
            && !attention.Output.IsGraphOutput && !transpose.Output.IsGraphOutput)
        {
            graph.ReplaceUses(reshape.Output, output);
            return;
        }
        var heads = attention.Output.Shape[1].Size;
        var headDim = attention.Output.Shape[3].Size;
        var split = Insert(graph, attention, "reshape", output, new() { ["shape"] = new IntsAttribute([0, 0, heads, headDim]) });
        graph.ReplaceUses(attention.Output, Insert(graph, attention, "transpose", split, new() { ["perm"] = new IntsAttribute(SwapHeadsAndSeq) }));
    }

    // Inputs and buffers that the rewrite left unread (the mask's position ids once rotary is fused).
    private static void RemoveUnread(ModelGraph graph, List<Value> readBefore)
    {
        foreach (var input in readBefore.Where(v => v.Kind == ValueKind.Input && !v.IsUsed)) graph.RemoveInput(input);
        foreach (var buffer in graph.Buffers.Where(b => !b.Value.IsUsed && readBefore.Contains(b.Value)).ToList()) graph.RemoveBuffer(buffer);
    }

    private static Value Insert(ModelGraph graph, Node anchor, string op, Value input, Dictionary<string, AttributeValue> attributes)
    {
        var node = graph.CreateNode(op, [input], attributes);
        graph.InsertBefore(anchor, node);
        return node.Output;
    }
}
