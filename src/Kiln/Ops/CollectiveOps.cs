using Kiln.Compile;
using Kiln.Graph;
using Kiln.Kernels;

namespace Kiln.Ops;

/// <summary>Ops that exchange data between the ranks of a tensor-parallel world (placed by shard_tensor_parallel).</summary>
public static class CollectiveOps
{
    public static IEnumerable<OpDefinition> All()
    {
        // all_reduce(x) = the sum of x over every rank: the partial products of a row-parallel projection
        // become the whole product. Runs on Kiln's kernel (Kernels/AllReduceKernel) over the session's world.
        yield return new("all_reduce", 1, 1, [], c =>
        {
            if (c[0].DType != DType.F32) throw c.Error("x must be float32");
            return [c[0]];
        }, l => l.Emit(AllReduceKernel.OpType, l.Inputs, domain: OnnxGraphBuilder.KilnDomain));
    }
}
