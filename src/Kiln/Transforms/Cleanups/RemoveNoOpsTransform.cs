using Kiln.Graph;
using Kiln.Transforms.PatternMatching;
using static Kiln.Transforms.PatternMatching.Pattern;

namespace Kiln.Transforms.Cleanups;

/// <summary>
/// post_export: removes nodes that hand an input through unchanged, so its readers read that input:
/// reshape, slice and expand whose output type equals the input's, cast to the same dtype, transpose
/// by the identity permutation, add of constant 0 (either side), mul by constant 1 (either side) and
/// div by constant 1, the arithmetic ones only where no broadcasting enlarges the result. A constant
/// operand left unread goes too.
/// </summary>
public sealed class RemoveNoOpsTransform : Transform<TransformConfig>
{
    public override string Name => "remove_no_ops";

    public override Stage Stage => Stage.PostExport;

    public static IReadOnlyList<RewriteRule> Rules { get; } =
    [
        PassThrough("reshape", Op("reshape", Any("x"))),
        PassThrough("slice", Op("slice", Any("x"))),
        PassThrough("expand", Op("expand", Any("x"))),
        PassThrough("cast", Op("cast", Any("x"))),
        PassThrough("transpose", Op("transpose", Any("x")).When(IsIdentityPermutation)),
        PassThrough("add_zero", Op("add", Any("x"), Constant(0))),
        PassThrough("mul_one", Op("mul", Any("x"), Constant(1))),
        PassThrough("div_one", Op("div", Any("x"), Constant(1))),
    ];

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context) =>
        PatternRewriter.Rewrite(graph, Rules);

    // The root becomes x where that changes nothing: x already has the root's dtype and shape.
    private static RewriteRule PassThrough(string name, OpPattern pattern) =>
        new(name, pattern, m => m["x"].Type == m.Root.Output.Type ? [m["x"]] : null);

    private static bool IsIdentityPermutation(Node transpose) => transpose.Ints("perm").Select((p, i) => p == i).All(same => same);
}
