using Kiln.Graph;
using Kiln.Models;
using Kiln.Weights;

namespace Kiln.Transforms.Sharding;

/// <summary>
/// sharding: splits the graph for one rank of a tensor-parallel world (Megatron-LM's layout). In each
/// attention block the q, k and v projections keep the rank's whole heads (column-parallel: a slice of
/// the weight's rows and bias) and the output projection the matching input features (row-parallel: a
/// slice of the weight's columns), followed by an <c>all_reduce</c> that sums the ranks' partial
/// products; the MLP's gate and up projections and its down projection split the same way around
/// <c>swiglu</c> or Gemma's <c>gelu</c>(gate) * up (or GPT-2's up projection and down projection around <c>gelu</c>). Embedding, norms
/// and output layer stay whole on every rank. Only shapes, load-recipe slices and the all-reduce nodes
/// change; no weight is read. A world of one rank is left as it is.
/// </summary>
public sealed class ShardTensorParallelTransform : Transform<TransformConfig>
{
    public override string Name => "shard_tensor_parallel";

    public override Stage Stage => Stage.Sharding;

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context)
    {
        if (context.WorldSize == 1) return 0;
        var share = new TensorParallelShare(context.WorldSize, context.Rank);
        var parameters = graph.Parameters.ToDictionary(p => p.Value, p => p, (IEqualityComparer<Value>)ReferenceEqualityComparer.Instance);
        var rowParallel = new List<Node>();
        var blocks = 0;
        var fields = ModelFamily.ShardedFieldsOf(graph.Model?.Family);

        foreach (var attention in graph.Nodes.Where(n => n.Op == "attention").ToList())
        {
            var (q, k, v) = (attention.Inputs[0], attention.Inputs[1], attention.Inputs[2]);
            var headDim = q.Shape[3].Size;
            var (qStart, qCount) = share.QueryHeads(q.Shape[1].Size, fields.Heads);
            var (kvStart, kvCount) = share.KeyValueHeads(k.Shape[1].Size, fields.KeyValueHeads);
            ShardOutputs(Projection(q, parameters), qStart * headDim, qCount * headDim, parameters);
            ShardOutputs(Projection(k, parameters), kvStart * headDim, kvCount * headDim, parameters);
            ShardOutputs(Projection(v, parameters), kvStart * headDim, kvCount * headDim, parameters);
            var output = OutputProjection(attention, parameters);
            ShardInputs(output, qStart * headDim, qCount * headDim, parameters);
            rowParallel.Add(output);
            blocks++;
        }

        foreach (var swiglu in graph.Nodes.Where(n => n.Op == "swiglu").ToList())
        {
            var gate = Linear(swiglu.Inputs[0].Producer, parameters, "swiglu's gate");
            var up = Linear(swiglu.Inputs[1].Producer, parameters, "swiglu's up");
            ShardMlp([gate, up], Linear(SoleReader(swiglu.Output), parameters, "the projection after swiglu"), "intermediate size");
        }

        // Gemma's GeGLU: gelu(gate) * up -> down, split like swiglu's (no fused op: ONNX Runtime's CPU has no kernel for it).
        foreach (var gelu in graph.Nodes.Where(n => n.Op == "gelu").ToList())
        {
            if (SoleReader(gelu.Output) is not { Op: "mul" } product) continue;
            var gate = Linear(gelu.Inputs[0].Producer, parameters, "the GeGLU's gate");
            var up = Linear(product.Inputs[ReferenceEquals(product.Inputs[0], gelu.Output) ? 1 : 0].Producer, parameters, "the GeGLU's up");
            ShardMlp([gate, up], Linear(SoleReader(product.Output), parameters, "the projection after the GeGLU"), "intermediate size");
        }

        // GPT-2's MLP: linear -> gelu -> linear, split like swiglu's. A gelu elsewhere (inside a GeGLU, above) is not such a block.
        foreach (var gelu in graph.Nodes.Where(n => n.Op == "gelu").ToList())
        {
            if (gelu.Inputs[0].Producer is not { Op: "linear" } up || !parameters.ContainsKey(up.Inputs[1]) || SoleReader(up.Output) != gelu) continue;
            if (SoleReader(gelu.Output) is not { Op: "linear" } down || !parameters.ContainsKey(down.Inputs[1])) continue;
            ShardMlp([up], down, "MLP width");
        }

        GraphTypes.Refresh(graph);
        foreach (var linear in rowParallel) AllReduceAfter(graph, linear);
        return blocks;

        // An MLP split by its hidden features: the projections into them column-parallel, the one out of them
        // row-parallel (its partial sums added up by an all_reduce after it).
        void ShardMlp(Node[] into, Node down, string width)
        {
            var size = into[0].Inputs[1].Shape[0].Size;
            var (start, count) = share.Features(size, $"{width} {size} (config.json {fields.Intermediate})");
            foreach (var projection in into) ShardOutputs(projection, start, count, parameters);
            ShardInputs(down, start, count, parameters);
            rowParallel.Add(down);
            blocks++;
        }
    }

    // The projection whose output reaches attention input `value` through per-head reshapes, transposes,
    // rotary embedding (fused or primitive), a per-head norm or a bias add (whose bias is sharded with the projection).
    private static Node Projection(Value value, Dictionary<Value, ParameterSpec> parameters)
    {
        for (var node = value.Producer; node != null; node = node.Inputs[0].Producer)
        {
            switch (node.Op)
            {
                case "linear" when parameters.ContainsKey(node.Inputs[1]):
                    return node;
                case "add" when parameters.ContainsKey(node.Inputs[1]):
                    continue;
                case "transpose" or "reshape" or "rotary_embedding" or "rms_norm":
                    continue;
                // The rotary embedding in primitive form (Phi-3's LongRoPE switching tables): x * cos + rotate_half(x) * sin works within each head.
                case "add" or "mul" when node.Inputs[0].Type == node.Output.Type:
                    continue;
                default:
                    throw Unsupported($"{node.Op} between an attention input and its projection");
            }
        }
        throw Unsupported("an attention input that no projection makes");
    }

    // attention -> transpose -> reshape -> the output projection.
    private static Node OutputProjection(Node attention, Dictionary<Value, ParameterSpec> parameters)
    {
        var node = SoleReader(attention.Output);
        while (node is { Op: "transpose" or "reshape" }) node = SoleReader(node.Output);
        return Linear(node, parameters, "the projection after attention");
    }

    private static Node? SoleReader(Value value) => value is { Users: [var only], IsGraphOutput: false } ? only : null;

    private static Node Linear(Node? node, Dictionary<Value, ParameterSpec> parameters, string what) =>
        node is { Op: "linear" } && parameters.ContainsKey(node.Inputs[1]) ? node : throw Unsupported($"{what} is not a linear over a weight");

    // Column-parallel: the rank's output features, rows [start, start + count) of the weight, and of its bias
    // (a linear's third input, or a bias added to its output).
    private static void ShardOutputs(Node linear, long start, long count, Dictionary<Value, ParameterSpec> parameters)
    {
        Slice(parameters[linear.Inputs[1]], 0, start, count);
        if (linear.Inputs.Count == 3) Slice(parameters[linear.Inputs[2]], 0, start, count);
    }

    // Row-parallel: the rank's input features, columns [start, start + count) of the weight. A bias stays
    // whole and is added once, after the all-reduce (AllReduceAfter).
    private static void ShardInputs(Node linear, long start, long count, Dictionary<Value, ParameterSpec> parameters) =>
        Slice(parameters[linear.Inputs[1]], 1, start, count);

    private static void Slice(ParameterSpec parameter, int dim, long start, long count)
    {
        parameter.Recipe = parameter.Recipe.Then(new SliceStep(dim, start, count));
        parameter.Value.Type = parameter.Value.Type with { Shape = parameter.Value.Shape.With(dim, Dim.Of(count)) };
    }

    // y = linear(x, w[, b]) becomes all_reduce(linear(x, w)) [+ b]: the ranks' partial products summed, the bias added once.
    private static void AllReduceAfter(ModelGraph graph, Node linear)
    {
        var bias = linear.Inputs.Count == 3 ? linear.Inputs[2] : null;
        var partial = linear;
        if (bias is not null)
        {
            partial = graph.CreateNode("linear", [linear.Inputs[0], linear.Inputs[1]], nameHint: linear.Output.Name);
            graph.InsertAfter(linear, partial);
        }
        var sum = graph.CreateNode("all_reduce", [partial.Output], nameHint: linear.Output.Name);
        graph.InsertAfter(partial, sum);
        var result = sum;
        if (bias is not null)
        {
            result = graph.CreateNode("add", [sum.Output, bias], nameHint: linear.Output.Name);
            graph.InsertAfter(sum, result);
        }
        // Every reader of y reads the result instead (the node computing it keeps its own input).
        graph.ReplaceUses(linear.Output, result.Output);
        if (bias is not null) graph.EraseNode(linear);
    }

    private static KilnException Unsupported(string what) =>
        new($"tensor parallel: the graph has {what}; shard_tensor_parallel splits attention and swiglu blocks of the fused graph (keep fuse_attention and fuse_swiglu enabled)");
}
