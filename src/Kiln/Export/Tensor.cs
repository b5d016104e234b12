using Kiln.Graph;

namespace Kiln.Export;

/// <summary>
/// A traced tensor: a handle to a graph value whose methods append nodes, named and shaped after
/// their PyTorch counterparts (<c>View</c>, <c>Transpose(1, 2)</c>, <c>Mean(-1, keepdim)</c>).
/// </summary>
public readonly record struct Tensor(Tracer Tracer, Value Value)
{
    public DType DType => Value.DType;

    public Shape Shape => Value.Shape;

    public static Tensor operator +(Tensor a, Tensor b) => a.Tracer.Op("add", [a, b]);
    public static Tensor operator -(Tensor a, Tensor b) => a.Tracer.Op("sub", [a, b]);
    public static Tensor operator *(Tensor a, Tensor b) => a.Tracer.Op("mul", [a, b]);
    public static Tensor operator /(Tensor a, Tensor b) => a.Tracer.Op("div", [a, b]);
    public static Tensor operator -(Tensor a) => a.Tracer.Op("neg", [a]);
    public static Tensor operator +(Tensor a, double b) => a + a.Tracer.Scalar(b, a.DType);
    public static Tensor operator -(Tensor a, double b) => a - a.Tracer.Scalar(b, a.DType);
    public static Tensor operator *(Tensor a, double b) => a * a.Tracer.Scalar(b, a.DType);
    public static Tensor operator /(Tensor a, double b) => a / a.Tracer.Scalar(b, a.DType);

    public Tensor Pow(double exponent) => Tracer.Op("pow", [this, Tracer.Scalar(exponent, DType)]);
    public Tensor Rsqrt() => Tracer.Op("rsqrt", [this]);
    public Tensor Cos() => Tracer.Op("cos", [this]);
    public Tensor Sin() => Tracer.Op("sin", [this]);
    public Tensor Silu() => Tracer.Op("silu", [this]);
    public Tensor Tanh() => Tracer.Op("tanh", [this]);
    public Tensor Cast(DType to) => Tracer.Op("cast", [this], new() { ["to"] = to.Name() });

    public Tensor Mean(long axis, bool keepdim) =>
        Tracer.Op("mean", [this], new() { ["axes"] = new[] { axis }, ["keepdim"] = keepdim ? 1L : 0L });

    /// <summary>torch.amax over <paramref name="axes"/>.</summary>
    public Tensor Max(long[] axes, bool keepdim) =>
        Tracer.Op("max", [this], new() { ["axes"] = axes, ["keepdim"] = keepdim ? 1L : 0L });

    public Tensor Softmax(long axis) => Tracer.Op("softmax", [this], new() { ["axis"] = axis });

    public Tensor MatMul(Tensor other) => Tracer.Op("matmul", [this, other]);

    /// <summary>torch.view / reshape; 0 keeps the input's dimension, -1 is inferred.</summary>
    public Tensor View(params long[] shape) => Tracer.Op("reshape", [this], new() { ["shape"] = shape });

    /// <summary>Swaps two dimensions, as torch.transpose.</summary>
    public Tensor Transpose(int dim0, int dim1)
    {
        var perm = Enumerable.Range(0, Shape.Rank).Select(i => (long)i).ToArray();
        var (a, b) = (Shape.NormalizeAxis(dim0), Shape.NormalizeAxis(dim1));
        (perm[a], perm[b]) = (perm[b], perm[a]);
        return Tracer.Op("transpose", [this], new() { ["perm"] = perm });
    }

    public Tensor Unsqueeze(long axis) => Tracer.Op("unsqueeze", [this], new() { ["axes"] = new[] { axis } });

    /// <summary>x[..., start:end, ...] along <paramref name="axis"/>.</summary>
    public Tensor Slice(long axis, long start, long end) =>
        Tracer.Op("slice", [this], new() { ["axis"] = axis, ["start"] = start, ["end"] = end });

    public Tensor Expand(params long[] shape) => Tracer.Op("expand", [this], new() { ["shape"] = shape });

    public Tensor LessOrEqual(Tensor other) => Tracer.Op("less_equal", [this, other]);
    public Tensor Greater(Tensor other) => Tracer.Op("greater", [this, other]);
    public Tensor And(Tensor other) => Tracer.Op("and", [this, other]);

    /// <summary>torch.where(this, whenTrue, whenFalse).</summary>
    public Tensor Where(Tensor whenTrue, Tensor whenFalse) => Tracer.Op("where", [this, whenTrue, whenFalse]);

    public static Tensor Cat(long axis, params Tensor[] tensors) => tensors[0].Tracer.Op("concat", tensors, new() { ["axis"] = axis });
}
