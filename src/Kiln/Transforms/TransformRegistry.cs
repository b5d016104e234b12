using Kiln.Transforms.Cleanups;
using Kiln.Transforms.Fusions;
using Kiln.Transforms.CacheInit;
using Kiln.Transforms.Compile;
using Kiln.Transforms.PostLoadFusion;
using Kiln.Transforms.Sharding;
using Kiln.Transforms.WeightLoad;

namespace Kiln.Transforms;

/// <summary>Every transform Kiln knows, by its unique name.</summary>
public sealed class TransformRegistry
{
    private readonly Dictionary<string, ITransform> _transforms = new(StringComparer.Ordinal);

    public TransformRegistry(IEnumerable<ITransform> transforms)
    {
        foreach (var transform in transforms)
        {
            if (!_transforms.TryAdd(transform.Name, transform)) throw new ArgumentException($"transform '{transform.Name}' is registered twice");
        }
    }

    public static TransformRegistry Default { get; } = new(
    [
        new EliminateDeadCodeTransform(),
        new FoldConstantsTransform(),
        new EliminateCommonSubexpressionsTransform(),
        new RemoveNoOpsTransform(),
        new FuseLayerNormTransform(),
        new FuseRmsNormTransform(),
        new FuseRotaryEmbeddingTransform(),
        new FuseAttentionTransform(),
        new FuseSwiGluTransform(),
        new FuseGeluTransform(),
        new FuseSkipRmsNormTransform(),
        new FuseSkipLayerNormTransform(),
        new ShardTensorParallelTransform(),
        new LoadWeightsTransform(),
        new FuseQkvProjectionsTransform(),
        new FuseGateUpProjectionsTransform(),
        new QuantizeWeightsTransform(),
        new InsertKvCacheTransform(),
        new UseKilnLinearTransform(),
        new SplitLongRowsTransform(),
        new UseMatMulNBitsTransform(),
        new SelectSessionOptionsTransform(),
    ]);

    public bool TryGet(string name, out ITransform transform) => _transforms.TryGetValue(name, out transform!);

    public IEnumerable<ITransform> All => _transforms.Values;
}
