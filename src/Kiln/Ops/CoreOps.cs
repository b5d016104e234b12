namespace Kiln.Ops;

/// <summary>The primitive ops a traced Hugging Face model uses, before any fusion.</summary>
public static class CoreOps
{
    public static IEnumerable<OpDefinition> All =>
        ElementwiseOps.All().Concat(ShapeOps.All()).Concat(LinearAlgebraOps.All());
}
